"""Offline training package: datasets, PyTorch networks, training, evaluation, export.

Run from the repository root (``python -m training.<tool>``); it imports the avemo_ros
core for every preprocessing step, so training and the live nodes share one implementation.
"""
