"""The split graph's modality nodes: one stream in, a ModalityEstimate per window out.

``audio_node`` (microphone) and ``video_node`` (camera) are the all-in-one
:class:`~avemo_ros.ros.perception_node.PerceptionNode` fed one stream: the same
parameters, lifecycle, input checks, diagnostics and pipeline, with window ends on the
absolute grid (multiples of ``hop_s``) so the fusion node can pair their windows by end
stamp. Every window outcome is published, an absent modality too (``count`` 0), so the
fusion node never waits for a window that has nothing to give. Run one near its sensor.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any

from rclpy.qos import QoSProfile

from ..modality_estimates import AUDIO_MODALITY, VIDEO_MODALITY, modality_window
from ..pipeline import ESTIMATED, PipelineConfig, WindowOutcome
from ..window import NS
from .modality_msg import ESTIMATE_TOPICS, modality_estimate_type, modality_message
from .perception_node import PerceptionNode


class ModalityNode(PerceptionNode):
    """One modality of the split graph (subclasses set ``MODALITY``)."""

    MODALITY = ""

    def __init__(self, node_name: str = "", **kwargs: Any):
        self.INPUTS = (self.MODALITY,)
        self.NETWORKS = frozenset(self.INPUTS)  # its own network only (GPU memory)
        super().__init__(node_name or f"{self.MODALITY}_node", **kwargs)

    def _make_outputs(self) -> None:
        self._output_pub = self.create_lifecycle_publisher(
            modality_estimate_type(), ESTIMATE_TOPICS[self.MODALITY], QoSProfile(depth=10))

    def _pipeline_config(self) -> PipelineConfig:
        return dataclasses.replace(super()._pipeline_config(), inputs=self.INPUTS,
                                   absolute_grid=True)

    def _on_outcome(self, outcome: WindowOutcome) -> None:
        if self._output_pub is None:
            return
        frame = self._camera_frame if self.MODALITY == VIDEO_MODALITY else self._audio.frame_id
        mw = modality_window(outcome, self.MODALITY, self.estimator.model_id, frame,
                             self._cfg["hop_s"])
        msg = modality_message(mw, modality_estimate_type(), self.estimator.labels,
                               self.estimator.fusion_source)
        self._output_pub.publish(msg)
        self.health.count("windows_published")
        if outcome.status != ESTIMATED:
            return
        latency = (self._now_ns() - outcome.end_ns) / NS
        self.timings.add("latency", latency)
        if self.first_estimate_delay is None and self._activated_at is not None:
            self.first_estimate_delay = time.monotonic() - self._activated_at
            self.get_logger().info(f"first {self.MODALITY} estimate "
                                   f"{self.first_estimate_delay:.2f} s after activation")


class AudioNode(ModalityNode):
    """Microphone -> windows -> speech gate, audio features, audio network -> audio_estimate."""

    MODALITY = AUDIO_MODALITY


class VideoNode(ModalityNode):
    """Camera -> windows -> faces (tracked) -> video network -> video_estimate (per face)."""

    MODALITY = VIDEO_MODALITY
