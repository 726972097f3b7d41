"""Lifecycle node: camera + microphone topics in, EmotionEstimate every hop out.

configure: load and warm up the model bundle; activate: subscribe, start the worker;
deactivate: unsubscribe, stop it; cleanup: release the models. Bad input is logged
(throttled), counted in /diagnostics and dropped; the node serves what it still can.
Threads: subscription callbacks only convert and buffer (the window buffer drops on
arrival every frame no window will select). A worker thread does everything expensive:
between windows it decodes the kept frames and detects their faces. The worker is fed
through a one-window slot: when it falls behind, the older waiting window is
dropped, counted (``windows_dropped``) and /diagnostics turns WARN.
"""
from __future__ import annotations

import re
import threading
import time
from collections import deque
from typing import Any, Optional

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from ..estimator import EmotionEstimator, EmotionResult
from ..face_frames import to_grey
from ..health import Health
from ..window import NS, StreamEvent, Window, WindowBuffer
from .. import conversions as conv
from ..audio_codec import AudioChunk
from .audio_input import AudioInput
from .compat import QoSMessageLostInfo, SubscriptionEventCallbacks, ros_context
from .node_status import FrameSlot, RollingTimes, node_status
from .params import declare, values
from .ros_logging import route_python_logging
from .perception_params import PARAMS

_DIGITS = re.compile(r"[-+]?\d+(\.\d+)?")
_STREAM_COUNTERS = {
    StreamEvent.BACKWARDS: "timestamps_backwards", StreamEvent.GAP: "stream_gaps",
    StreamEvent.RATE_CHANGE: "audio_rate_changes", StreamEvent.DUPLICATE: "stale_dropped",
    StreamEvent.STALE: "stale_dropped",
}
class PerceptionNode(LifecycleNode):
    """All-in-one audio-visual emotion perception node."""

    def __init__(self, node_name: str = "perception_node", **kwargs: Any):
        super().__init__(node_name, **kwargs)
        declare(self, PARAMS)
        self.health = Health()
        self.estimator: Optional[EmotionEstimator] = None
        self.buffer: Optional[WindowBuffer] = None
        self._emotion_pub = None
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = None
        self._subs: list = []
        self._cfg: dict[str, Any] = {}
        self._state = "unconfigured"
        self._config_error: Optional[str] = None
        self._last_diag_counts: dict[str, int] = {}
        self._activated_at: Optional[float] = None
        self.first_estimate_delay: Optional[float] = None
        self._camera_frame = ""
        self._mic_frame = ""
        self._audio: Optional[AudioInput] = None
        self._last_camera_ns: Optional[int] = None
        self._throttle: dict[tuple[str, str], float] = {}
        self.timings = RollingTimes()
        self._cv = threading.Condition()
        self._waiting: Optional[tuple[Window, float]] = None  # (window, ready at, monotonic)
        self._to_prepare: deque = deque(maxlen=100)  # (stamp, FrameSlot) kept frames
        self._worker: Optional[threading.Thread] = None
        self._stopping = False
        self._prepared_from_ns = 0  # frames older than this belong to processed windows only
        self._clock_restarted = False
        self.context.on_shutdown(self._stop_worker)
        self._start_diagnostics()

    # --- lifecycle --------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._cfg = values(self, PARAMS)
        try:
            if not self._cfg["model_dir"]:
                raise ValueError("parameter model_dir is empty: point it at a model bundle")
            self._audio = AudioInput(self, self._cfg, self._on_audio_chunk, self._warn,
                                     self.health.count, lambda: self._last_camera_ns)
            t0 = time.perf_counter()
            self.estimator = EmotionEstimator(self._cfg["model_dir"], self._cfg["backend"],
                                              self._cfg["threads"],
                                              cascade_path=self._cfg["haar_cascade"] or None)
            self.estimator.warmup(self._cfg["warmup_runs"])
            load_s = time.perf_counter() - t0
        except Exception as e:  # any failure to load must leave the node unconfigured
            self._config_error = str(e)
            self.health.count("configure_failures", problem=str(e))
            self.get_logger().error(f"configure failed: {e}")
            self._release()
            return TransitionCallbackReturn.FAILURE
        self._config_error = None
        self._emotion_pub = self.create_lifecycle_publisher(
            self._msg_type(), "emotion", QoSProfile(depth=10))
        self.get_logger().info(
            f"configured: model {self.estimator.model_id} ({self.estimator.backend_names}), "
            f"labels {self.estimator.labels}, loaded and warmed up in {load_s:.2f} s")
        self._state = "inactive"
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        m = self.estimator.manifest
        self.buffer = WindowBuffer(window_s=m.audio.window_s, hop_s=self._cfg["hop_s"],
                                   n_frames=m.video.n_frames, grace_s=self._cfg["grace_s"])
        self._start_worker()
        lost_frames = SubscriptionEventCallbacks(message_lost=self._on_frames_lost)
        if self._cfg["image_transport"] == "compressed":
            self._subs.append(self.create_subscription(
                CompressedImage, "image/compressed", self._on_image, qos_profile_sensor_data,
                event_callbacks=lost_frames))
        else:
            self._subs.append(self.create_subscription(
                Image, "image", self._on_image, qos_profile_sensor_data,
                event_callbacks=lost_frames))
        self._audio.subscribe(self._on_audio_lost)
        self._activated_at = time.monotonic()
        self.first_estimate_delay = None
        self._state = "active"
        self.get_logger().info(f"active: image '{self._subs[0].topic_name}', audio "
                               f"'{self._audio.topic}' ({self._cfg['audio_msg_type']}), emotion "
                               f"'{self._emotion_pub.topic_name}'")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unsubscribe()
        self._stop_worker()
        self.buffer = None
        self._state = "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self._state = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unsubscribe()
        self._stop_worker()
        self._release()
        self._state = "finalized"
        return TransitionCallbackReturn.SUCCESS

    def _unsubscribe(self) -> None:
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs.clear()
        if self._audio is not None:
            self._audio.unsubscribe()

    def _release(self) -> None:
        if self._emotion_pub is not None:
            self.destroy_lifecycle_publisher(self._emotion_pub)
            self._emotion_pub = None
        if self.estimator is not None:
            self.estimator.close()
            self.estimator = None
        self._audio = None

    @staticmethod
    def _msg_type():
        from avemo_ros.msg import EmotionEstimate
        return EmotionEstimate

    # --- input ------------------------------------------------------------------------
    def _warn(self, counter: str, text: str, n: int = 1) -> None:
        """Count a problem; log it throttled per kind (counter + message without numbers)."""
        self.health.count(counter, n, problem=text)
        now = time.monotonic()
        key = (counter, _DIGITS.sub("#", text))
        if now - self._throttle.get(key, -1e9) >= self._cfg.get("log_throttle_s", 5.0):
            self._throttle[key] = now
            self.get_logger().warning(text)

    def _stream_event(self, event: StreamEvent, what: str) -> None:
        if event is StreamEvent.BACKWARDS:
            self._prepared_from_ns = 0  # a new clock: prepare its frames again
            self._clock_restarted = True  # the worker drops the face boxes of the old clock
        if event is not StreamEvent.OK:
            self._warn(_STREAM_COUNTERS[event], f"{what}: {event.value}")

    def _on_image(self, msg) -> None:
        if self.buffer is None:
            return
        self.health.count("frames_received")
        if isinstance(msg, Image):
            problem = conv.check_image(msg, self._cfg["max_image_pixels"])
            if problem:
                counter = "image_unsupported" if "encoding" in problem else "image_invalid"
                self._warn(counter, f"image dropped: {problem}")
                return
        elif not msg.data:
            self._warn("image_invalid", "compressed image dropped: no data")
            return
        self._camera_frame = msg.header.frame_id
        stamp = conv.stamp_to_ns(msg.header.stamp)
        self._last_camera_ns = stamp
        self.timings.add("image_arrival_lag", (self._now_ns() - stamp) / NS)
        self._stream_event(self.buffer.add_frame(stamp, FrameSlot(msg), time.monotonic()),
                           "camera")
        self._hand_off(self.buffer.take_selected_frames())

    def _on_audio_chunk(self, chunk: AudioChunk) -> None:
        if self.buffer is None:
            return
        self._mic_frame = self._audio.frame_id
        self.timings.add("audio_arrival_lag", (self._now_ns() - chunk.end_ns) / NS)
        self._stream_event(self.buffer.add_audio(chunk.stamp_ns, chunk.samples,
                                                 chunk.sample_rate, time.monotonic()),
                           "microphone")
        self._hand_off()

    def _on_frames_lost(self, info: QoSMessageLostInfo) -> None:
        self._warn("frames_lost", f"{info.total_count_change} camera frame(s) lost in transport: "
                   "raw images need the large-data Fast DDS profile in the camera driver's "
                   "process too: FASTDDS_DEFAULT_PROFILES_FILE (Humble/Jazzy: "
                   "FASTRTPS_DEFAULT_PROFILES_FILE)"
                   "=<share/avemo_ros>/config/fastdds_large_data.xml (the launch file and runner "
                   "set it for their processes), or image_transport:=compressed",
                   info.total_count_change)

    def _on_audio_lost(self, info: QoSMessageLostInfo) -> None:
        self._warn("audio_lost", f"{info.total_count_change} audio message(s) lost in transport")

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    # --- processing (worker thread) ----------------------------------------------------
    def _hand_off(self, frames: Optional[list] = None) -> None:
        """Give the worker the newly kept frames and the windows that are ready now."""
        windows = self.buffer.pop_ready(time.monotonic())
        dropped = []
        with self._cv:
            if frames:
                self._to_prepare.extend(frames)
            for window in windows:
                self.timings.add("window_ready_lag", (self._now_ns() - window.end_ns) / NS)
                if self._waiting is not None:
                    dropped.append(self._waiting[0])
                self._waiting = (window, time.monotonic())
            if frames or windows:
                self._cv.notify()
        for window in dropped:
            self._warn("windows_dropped", f"processing falls behind: window ending "
                       f"{window.end_ns / NS:.3f} s dropped for a newer one")

    def _start_worker(self) -> None:
        self._stopping = False
        self._waiting = None
        self._to_prepare.clear()
        self._prepared_from_ns = 0
        self._worker = threading.Thread(target=self._work, name="perception_worker", daemon=True)
        self._worker.start()

    def _stop_worker(self) -> None:
        if self._worker is None:
            return
        with self._cv:
            self._stopping = True
            self._cv.notify()
        self._worker.join(10.0)
        if self._worker.is_alive():
            self.get_logger().error("worker thread did not stop within 10 s")
        self._worker = None

    def _work(self) -> None:
        """Worker loop: a waiting window first, else prepare one kept frame."""
        while True:
            with self._cv:
                while not (self._stopping or self._waiting or self._to_prepare):
                    self._cv.wait()
                if self._stopping:
                    return
                job, self._waiting = self._waiting, None
                frame = None if job else self._to_prepare.popleft()
            if self._clock_restarted:
                self._clock_restarted = False
                self.estimator.extractor.reset()
            try:
                if job:
                    self.timings.add("queue_wait", time.monotonic() - job[1])
                    self._process(job[0])
                else:
                    self._prepare(*frame)
            except Exception as e:  # the worker must survive anything a window throws
                self._warn("inference_errors", f"worker: {type(e).__name__}: {e}")

    def _decode(self, slot: FrameSlot) -> Any:
        if slot.grey is not None:
            return slot.grey
        if slot.error is not None:
            raise conv.ConversionError(slot.error)
        if isinstance(slot.msg, Image):
            return conv.image_to_rgb(slot.msg, max_pixels=self._cfg["max_image_pixels"])
        return conv.compressed_to_rgb(slot.msg, max_pixels=self._cfg["max_image_pixels"])

    def _prepare(self, stamp: int, slot: FrameSlot) -> None:
        """Decode a kept frame to grey and detect its face before its windows end."""
        if stamp < self._prepared_from_ns or slot.grey is not None or slot.error is not None:
            return
        try:
            slot.grey = to_grey(self._decode(slot))
        except ValueError as e:
            slot.error = str(e)
            return
        finally:
            slot.msg = None  # keep the small grey image, not the message
        self.estimator.extractor.prepare_frame(stamp, slot.grey)

    def _process(self, window: Window) -> None:
        self._prepared_from_ns = window.start_ns + int(round(self._cfg["hop_s"] * NS))
        try:
            result = self.estimator.estimate(window, self._decode)
        except Exception as e:  # a failing window must not take the node down
            self._warn("inference_errors", f"window ending {window.end_ns / NS:.3f} s "
                       f"failed: {e}")
            return
        if result is None:
            self._warn("windows_skipped", f"window ending {window.end_ns / NS:.3f} s "
                       "has neither usable audio nor a face: no estimate")
            return
        self.timings.add("window_compute", result.inference_time)
        if self.estimator.last_bad_frames:
            self._warn("image_invalid", f"{self.estimator.last_bad_frames} frame(s) of the "
                       f"window ending {window.end_ns / NS:.3f} s not decodable: left out")
        if window.has_video and not result.face_found:
            self.health.count("windows_without_face")
        self._publish(result)

    def _publish(self, r: EmotionResult) -> None:
        msg = self._msg_type()()
        msg.header.stamp = conv.ns_to_stamp(r.end_ns)
        msg.header.frame_id = self._camera_frame if r.face_found else self._mic_frame
        msg.window_start = conv.ns_to_stamp(r.start_ns)
        msg.labels = list(r.labels)
        msg.probabilities = [float(p) for p in r.probabilities]
        msg.label, msg.confidence, msg.modalities = r.label, r.confidence, r.modalities
        msg.audio_probabilities = [] if r.audio_probabilities is None else \
            [float(p) for p in r.audio_probabilities]
        msg.video_probabilities = [] if r.video_probabilities is None else \
            [float(p) for p in r.video_probabilities]
        msg.face_detected = r.face_found
        if r.face_box is not None:
            msg.face_box = [int(v) for v in r.face_box]
        msg.valence, msg.arousal = r.valence, r.arousal
        msg.inference_time = float(r.inference_time)
        msg.model_id = self.estimator.model_id
        msg.latency = float((self._now_ns() - r.end_ns) / NS)
        self._emotion_pub.publish(msg)
        self.timings.add("latency", msg.latency)
        self.health.count("windows_published")
        if self.first_estimate_delay is None and self._activated_at is not None:
            self.first_estimate_delay = time.monotonic() - self._activated_at
            self.get_logger().info(f"first estimate {self.first_estimate_delay:.2f} s after "
                                   f"activation: {r.label} ({r.confidence:.2f})")

    # --- diagnostics ------------------------------------------------------------------
    def _start_diagnostics(self) -> None:
        period = self.get_parameter("diagnostics_period_s").value
        self._diag_timer = self.create_timer(period, self.publish_diagnostics)

    def publish_diagnostics(self) -> None:
        """Publish the counters and the state on /diagnostics."""
        if self._audio is not None:
            self._audio.check_graph()
        extra = {}
        if self.estimator is not None:
            extra["model_id"] = self.estimator.model_id
        if self.first_estimate_delay is not None:
            extra["first_estimate_delay_s"] = f"{self.first_estimate_delay:.3f}"
        buffer = self.buffer
        if buffer is not None:
            extra["frames_unused"] = buffer.frames_unused
            extra["frames_held"] = buffer.frames_held
        extra.update(self.timings.summary())
        status, self._last_diag_counts = node_status(
            self.get_fully_qualified_name(), self.health, self._last_diag_counts, self._state,
            self._config_error, extra)
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(arr)

def main(args=None) -> None:
    """Run the node alone (lifecycle transitions come from launch or a lifecycle manager)."""
    try:
        with ros_context(args):
            node = PerceptionNode()
            route_python_logging(node)
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
