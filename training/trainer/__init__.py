"""Classification trainer: class weights, early stopping, checkpoints with exact resume, a
per-epoch metrics log, and data parallelism under torchrun (one script on CPU and on GPUs).

    torchrun --standalone --nproc_per_node 2 -m training.trainer --selftest /tmp/selftest

A run directory (``out_dir``) holds ``last.pt`` (everything needed to continue, rewritten
atomically every epoch), ``best.pt`` (the best weights so far) and ``metrics.jsonl``.
Checkpoints are pickles: load only run directories you trust.

Modules: ``config`` (TrainConfig, TrainResult), ``distributed`` (seeding, devices,
torchrun), ``data`` (class weights, shards, prediction, metrics), ``checkpoints`` (save,
resume), ``loop`` (:func:`train_classifier`), ``selftest``.
"""
from .checkpoints import load_checkpoint, load_weights, model_signature
from .config import (BEST, CHECKPOINT_FORMAT, LAST, METRICS, MONITORS, Batch, LossFn,
                     TrainConfig, TrainResult)
from .data import (balanced_class_weights, confusion_metrics, logits_of, one_per_group, predict,
                   shard_indices)
from .distributed import DistContext, distributed_context, seed_everything, shutdown_distributed
from .loop import train_classifier
from .selftest import main, run_selftest, selftest_data

__all__ = [
    "BEST", "CHECKPOINT_FORMAT", "LAST", "METRICS", "MONITORS", "Batch", "DistContext",
    "LossFn", "TrainConfig", "TrainResult", "balanced_class_weights", "confusion_metrics",
    "distributed_context", "load_checkpoint", "load_weights", "logits_of", "main",
    "model_signature", "one_per_group", "predict", "run_selftest", "seed_everything",
    "selftest_data", "shard_indices", "shutdown_distributed", "train_classifier",
]
