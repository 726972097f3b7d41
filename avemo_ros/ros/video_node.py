"""``video_node``: the split graph's video half (:mod:`avemo_ros.ros.modality_node`)."""
from __future__ import annotations

from .modality_node import VideoNode
from .ros_logging import spin_node

__all__ = ["VideoNode", "main"]


def main(args=None) -> None:
    """Run the node alone (lifecycle transitions come from launch or a lifecycle manager)."""
    spin_node(VideoNode, args)
