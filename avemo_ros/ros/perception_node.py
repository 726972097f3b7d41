"""Lifecycle node: camera + microphone topics in, EmotionEstimate every hop out.

A thin adapter around the core :class:`~avemo_ros.pipeline.StreamingPipeline`. configure:
load and warm up the bundle; activate: subscribe, start the worker; deactivate: the reverse.
Threads: the executor thread runs the callbacks, which only convert a message into an
event and ``submit`` it; the worker (:class:`~avemo_ros.pipeline_thread.PipelineThread`)
owns the pipeline, does all compute and publishes (``_on_outcome``). ``problems`` (counted,
logged throttled per kind), ``health`` and ``timings`` are thread-safe.
"""
from __future__ import annotations

import time
from typing import Any, Optional

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CompressedImage, Image

from .. import conversions as conv
from ..audio_codec import AudioChunk
from ..estimator import EmotionEstimator
from ..health import Health
from ..input_problems import Problem, ProblemLog, problem_of
from ..pipeline import ESTIMATED, PipelineConfig, StreamingPipeline, WindowOutcome
from ..pipeline_thread import PipelineThread
from ..speech_gate import SpeechGate
from ..stream_events import camera_frame, microphone_chunk
from ..window import NS
from .audio_input import AudioInput
from .compat import QoSMessageLostInfo, SubscriptionEventCallbacks
from .debug_image import DebugImagePublisher
from .estimate_msg import emotion_estimate_type, estimate_message
from .hri_output import HriOutput
from .node_status import FRAMES_LOST_FIX, RollingTimes, diagnostics_extra, log_to
from .params import declare, values
from .perception_params import (PARAMS, configured_text, estimator_args, face_source_for,
                                pipeline_config, speech_gate)
from .node_lifecycle import StreamNodeLifecycle
from .ros_logging import spin_node



def camera_qos() -> QoSProfile:
    """Sensor data QoS (best effort, keep last 5), a new profile each call: QoS overrides
    change the profile they are given, so never the shared ``qos_profile_sensor_data``."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=qos_profile_sensor_data.depth,
                      reliability=ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.VOLATILE)

class PerceptionNode(StreamNodeLifecycle, LifecycleNode):
    """All-in-one audio-visual emotion perception node (the split graph's modality nodes
    subclass it: :mod:`avemo_ros.ros.modality_node`)."""

    #: The input streams this node subscribes and windows.
    INPUTS: tuple = ("audio", "video")
    #: The bundle's networks this node loads (None: all of them).
    NETWORKS: Optional[frozenset] = None

    def __init__(self, node_name: str = "perception_node", **kwargs: Any):
        super().__init__(node_name, **kwargs)
        declare(self, PARAMS)
        self.health = Health()
        self.problems = ProblemLog(self.health, log_to(self.get_logger()),
                                   self.get_parameter("log_throttle_s").value)
        self.timings = RollingTimes()
        self.estimator: Optional[EmotionEstimator] = None
        self.speech_gate: Optional[SpeechGate] = None
        self._worker: Optional[PipelineThread] = None
        self._audio: Optional[AudioInput] = None
        self._output_pub = None  # emotion (here), audio_estimate / video_estimate (modality)
        self._debug: Optional[DebugImagePublisher] = None  # ~/debug_image (debug_image.py)
        self._hri: Optional[HriOutput] = None  # REP-155 topics (hri_output.py)
        self._faces: Any = None  # the pipeline's face source (tracker), made at configure
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._subs: list = []
        self._cfg: dict[str, Any] = {}
        self._state = "unconfigured"
        self._config_error: Optional[str] = None
        self._last_diag_counts: dict[str, int] = {}
        self._activated_at: Optional[float] = None
        self.first_estimate_delay: Optional[float] = None  # set by the worker, read by diag
        # written by the executor thread only (the worker reads the frame id when publishing)
        self._camera_frame = ""
        self._last_camera_ns: Optional[int] = None
        self.context.on_shutdown(self._stop_worker)
        self._diag_timer = self.create_timer(self.get_parameter("diagnostics_period_s").value,
                                             self.publish_diagnostics)

    # --- lifecycle --------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._cfg = values(self, PARAMS)
        self.problems.throttle_s = self._cfg["log_throttle_s"]
        try:
            if not self._cfg["model_dir"]:
                raise ValueError("parameter model_dir is empty: point it at a model bundle")
            if "audio" in self.INPUTS:
                self._audio = AudioInput(self, self._cfg, self._on_audio_chunk,
                                         self.problems.report, self.problems.count,
                                         lambda: self._last_camera_ns)
            t0 = time.perf_counter()
            self.estimator = EmotionEstimator(**estimator_args(self._cfg),
                                              networks=self.NETWORKS)
            self.estimator.warmup(self._cfg["warmup_runs"])
            if "audio" in self.INPUTS:
                self.speech_gate = speech_gate(self._cfg, self.estimator.manifest.training)
            self._faces = face_source_for(self._cfg, self.estimator)
            load_s = time.perf_counter() - t0
        except Exception as e:  # any failure to load must leave the node unconfigured
            self._config_error = str(e)
            self.health.count(Problem.CONFIGURE_FAILURES.value, problem=str(e))
            self.get_logger().error(f"configure failed: {e}")
            self._release()
            return TransitionCallbackReturn.FAILURE
        self._config_error = None
        self._make_outputs()
        self.get_logger().info(configured_text(self.estimator, self.speech_gate, self._faces,
                                               self._cfg, load_s))
        self._state = "inactive"
        return super().on_configure(state)

    def _make_outputs(self) -> None:
        """The lifecycle publishers (configure): emotion, ~/debug_image, REP-155."""
        self._output_pub = self.create_lifecycle_publisher(
            emotion_estimate_type(), "emotion", QoSProfile(depth=10))
        self._debug = DebugImagePublisher.create(self, self._cfg["debug_rate_hz"],
                                                 self._cfg["max_image_pixels"])
        self._hri = HriOutput.create(self, self._cfg["hri_output"])

    def _pipeline_config(self) -> PipelineConfig:
        return pipeline_config(self._cfg, self.estimator)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        c = self._cfg
        self._faces.reset()
        self._worker = PipelineThread(StreamingPipeline(
            self.estimator, self.problems, self._pipeline_config(), self.speech_gate,
            self._faces), self._on_outcome)
        self._worker.start()
        inputs = []
        if "video" in self.INPUTS:
            lost_frames = SubscriptionEventCallbacks(message_lost=self._on_frames_lost)
            compressed = c["image_transport"] == "compressed"
            self._subs.append(self.create_subscription(
                CompressedImage if compressed else Image, "image/compressed" if compressed
                else "image", self._on_image, camera_qos(),
                event_callbacks=lost_frames,
                # qos_overrides.<topic>.subscription.{history,depth,reliability} (read-only)
                qos_overriding_options=QoSOverridingOptions.with_default_policies()))
            qos = self._subs[0].qos_profile
            inputs.append(f"image '{self._subs[0].topic_name}' ({qos.reliability.name.lower()}, "
                          f"depth {qos.depth})")
        if self._audio is not None:
            self._audio.subscribe()
            inputs.append(f"audio '{self._audio.topic}' ({c['audio_msg_type']})")
        self._activated_at = time.monotonic()
        self.first_estimate_delay = None
        self._state = "active"
        self.get_logger().info(f"active: {', '.join(inputs)}, output "
                               f"'{self._output_pub.topic_name}'")
        return super().on_activate(state)

    def _stop_input(self) -> None:
        """Unsubscribe, then stop the worker (what it computed is still published)."""
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs.clear()
        if self._audio is not None:
            self._audio.unsubscribe()
        self._stop_worker()

    def _stop_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None and not worker.stop():
            self.get_logger().error("worker thread did not stop within 10 s")

    def _release(self) -> None:
        if self._output_pub is not None:
            self.destroy_lifecycle_publisher(self._output_pub)
            self._output_pub = None
        for pub in (self._debug, self._hri):
            if pub is not None:
                pub.destroy()
        self._debug = self._hri = self._faces = None
        if self.estimator is not None:
            self.estimator.close()
            self.estimator = None
        self.speech_gate = self._audio = None

    # --- input (executor thread) ------------------------------------------------------
    def _on_image(self, msg) -> None:
        worker = self._worker
        if worker is None:
            return
        self.health.count("frames_received")
        now = self._now_ns()
        try:
            event = camera_frame(msg, self._cfg["max_image_pixels"], received_ns=now,
                                 received_s=time.monotonic())
        except conv.ConversionError as e:
            self.problems.report(problem_of(e, Problem.IMAGE_INVALID), f"image dropped: {e}")
            return
        self._camera_frame = msg.header.frame_id
        self._last_camera_ns = event.stamp_ns
        self.timings.add("image_arrival_lag", (now - event.stamp_ns) / NS)
        worker.submit(event)
        if self._debug is not None:
            self._debug.add_frame(msg, event.stamp_ns)

    def _on_audio_chunk(self, chunk: AudioChunk) -> None:
        worker = self._worker
        if worker is None:
            return
        now = self._now_ns()
        self.timings.add("audio_arrival_lag", (now - chunk.end_ns) / NS)
        worker.submit(microphone_chunk(chunk, received_ns=now, received_s=time.monotonic()))

    def _on_frames_lost(self, info: QoSMessageLostInfo) -> None:
        n = info.total_count_change
        self.problems.report(Problem.FRAMES_LOST,
                             f"{n} camera frame(s) lost in transport: {FRAMES_LOST_FIX}", n)

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    # --- output (worker thread) -------------------------------------------------------
    def _on_outcome(self, outcome: WindowOutcome) -> None:
        r = outcome.result
        if outcome.status != ESTIMATED or r is None or self._output_pub is None:
            return
        t0 = time.perf_counter()
        msg = estimate_message(r, emotion_estimate_type(), self._camera_frame if r.face_found
                               else self._audio.frame_id, self.estimator.model_id, self._now_ns())
        self._output_pub.publish(msg)
        latency, critical = msg.latency, r.critical_time + time.perf_counter() - t0
        if self._hri is not None:
            self._hri.publish(r, self._camera_frame)
        if self._debug is not None:
            self._debug.on_estimate(r, latency)
        self.timings.add_estimate(latency, r, critical, outcome)
        self.health.count("windows_published")
        if self.first_estimate_delay is None and self._activated_at is not None:
            self.first_estimate_delay = time.monotonic() - self._activated_at
            self.get_logger().info(f"first estimate {self.first_estimate_delay:.2f} s after "
                                   f"activation: {r.label} ({r.confidence:.2f})")

    # --- diagnostics (executor thread) -------------------------------------------------
    def publish_diagnostics(self) -> None:
        """Publish the counters and the state on /diagnostics."""
        if self._audio is not None:
            self._audio.check_graph()
        extra = diagnostics_extra(self.estimator.model_id if self.estimator else None,
                                  self.first_estimate_delay,
                                  self._worker.gauges if self._worker else {},
                                  self.timings.summary())
        status = self._diagnostic_status(extra)
        self._publish_status(status)


def main(args=None) -> None:
    """Run the node alone (lifecycle transitions come from launch or a lifecycle manager)."""
    spin_node(PerceptionNode, args)
