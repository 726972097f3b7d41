"""``audio_node``: the split graph's audio half (:mod:`avemo_ros.ros.modality_node`)."""
from __future__ import annotations

from .modality_node import AudioNode
from .ros_logging import spin_node

__all__ = ["AudioNode", "main"]


def main(args=None) -> None:
    """Run the node alone (lifecycle transitions come from launch or a lifecycle manager)."""
    spin_node(AudioNode, args)
