"""Lifecycle node: camera + microphone topics in, EmotionEstimate every hop out.

configure: load and warm up the model bundle, create publishers; activate: subscribe and
start the worker; deactivate: unsubscribe, stop the worker; cleanup: release the models.
Bad input is logged (throttled), counted in /diagnostics and dropped; the node keeps
serving what it still can.

Threads: subscription callbacks only convert and buffer (the window buffer drops on
arrival every frame no window will select). A worker thread does everything expensive:
between windows it decodes the kept frames and detects their faces, so that at a window's
end only the spectrogram, the networks and the frames of the last moments remain. The
worker is fed through a one-window slot: when it falls behind, the older waiting window is
dropped, counted (``windows_dropped``) and /diagnostics turns WARN.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Optional

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from ..backends import BACKENDS
from ..estimator import EmotionEstimator, EmotionResult
from ..face_frames import to_grey
from ..health import Health
from ..window import NS, StreamEvent, Window, WindowBuffer
from .. import conversions as conv
from ..audio_codec import AUDIO_MSG_TYPES, AudioChunk
from .audio_input import CLOCK_CHOICES, CODING_CHOICES, RELIABILITY_CHOICES, AudioInput
from .compat import QoSMessageLostInfo, SubscriptionEventCallbacks, ros_context
from .params import ParamSpec, declare, values

PARAMS = (
    ParamSpec("model_dir", "", "Model bundle directory (manifest.json + ONNX/engines)."),
    ParamSpec("backend", "auto", "Inference backend; auto = TensorRT when engines and a GPU "
              "exist, else ONNX Runtime.", choices=BACKENDS),
    ParamSpec("threads", 1, "CPU threads per ONNX Runtime session (0 = library default).",
              range=(0, 64)),
    ParamSpec("hop_s", 1.0, "Seconds between estimates (window length comes from the model).",
              range=(0.1, 10.0)),
    ParamSpec("grace_s", 1.0, "How long past a window's end to wait for a late modality before "
              "estimating without it, seconds.", range=(0.0, 5.0)),
    ParamSpec("image_transport", "raw", "Camera input: raw = sensor_msgs/Image on 'image', "
              "compressed = sensor_msgs/CompressedImage on 'image/compressed'.",
              choices=("raw", "compressed")),
    ParamSpec("max_image_pixels", 4096 * 4096, "Images with more pixels are rejected.",
              range=(1, 100_000_000)),
    ParamSpec("audio_msg_type", "AudioDataStamped", "Microphone message type: AudioDataStamped "
              "or AudioData (ros-drivers audio_capture, the released audio_common_msgs) or "
              "AudioStamped (mgonzs13 audio_common).", choices=AUDIO_MSG_TYPES),
    ParamSpec("audio_coding_format", "auto", "Coding of AudioData bytes when no audio_info is "
              "published: auto tells MP3 from raw PCM (wave) by the bytes; audio_info wins.",
              choices=CODING_CHOICES),
    ParamSpec("audio_sample_format", "S16LE", "PCM sample format of AudioData bytes when no "
              "audio_info is published (AudioStamped carries its own).",
              choices=("S16LE", "S16BE", "S32LE", "S32BE", "S24LE", "S24BE", "F32LE", "F32BE",
                       "U8", "S8")),
    ParamSpec("audio_channels", 1, "Channels of AudioData PCM when no audio_info is published.",
              range=(1, 64)),
    ParamSpec("audio_sample_rate", 16000, "Sample rate of AudioData PCM when no audio_info is "
              "published, Hz.", range=(1000, 384000)),
    ParamSpec("audio_reliability", "best_effort", "Audio subscription reliability: best_effort "
              "matches reliable and best-effort publishers; reliable only reliable ones.",
              choices=RELIABILITY_CHOICES),
    ParamSpec("audio_clock", "auto", "auto: audio header stamps far (>10 s) from the node clock "
              "and the camera's are mapped onto the node clock by a fixed offset; header: "
              "trust them.", choices=CLOCK_CHOICES),
    ParamSpec("haar_cascade", "", "Haar cascade XML for face detection; empty: OpenCV's bundled "
              "one, else the opencv-data one under /usr/share/opencv4/haarcascades."),
    ParamSpec("warmup_runs", 2, "Inference runs at configure so the first estimate is not late.",
              range=(0, 20)),
    ParamSpec("diagnostics_period_s", 1.0, "Period of /diagnostics, seconds.", range=(0.1, 60.0)),
    ParamSpec("log_throttle_s", 5.0, "Minimum seconds between repeats of one input warning.",
              range=(0.0, 3600.0)),
)

_STREAM_COUNTERS = {
    StreamEvent.BACKWARDS: "timestamps_backwards", StreamEvent.GAP: "stream_gaps",
    StreamEvent.RATE_CHANGE: "audio_rate_changes", StreamEvent.DUPLICATE: "stale_dropped",
    StreamEvent.STALE: "stale_dropped",
}
_LEVELS = (DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR)
#: Counters of this node that mean it falls behind or loses input (WARN when they grow).
_BEHIND_COUNTERS = ("windows_dropped", "audio_lost", "frames_lost")
#: Timing figures reported on /diagnostics (p50 / p95 / max over the last windows), ms.
TIMINGS = ("image_arrival_lag", "audio_arrival_lag", "window_ready_lag", "queue_wait",
           "window_compute", "latency")


class FrameSlot:
    """A kept camera frame: its message until the worker prepares it, then its grey image."""

    __slots__ = ("msg", "grey", "error")

    def __init__(self, msg: Any):
        self.msg = msg
        self.grey: Optional[Any] = None
        self.error: Optional[str] = None


class RollingTimes:
    """The last ``n`` values of named durations (thread-safe), summarised as percentiles."""

    def __init__(self, n: int = 1000):
        self._values = {name: deque(maxlen=n) for name in TIMINGS}
        self._lock = threading.Lock()

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self._values[name].append(seconds)

    def summary(self) -> dict[str, str]:
        """name_ms -> "p50 P p95 Q max M" for every timing with values."""
        out = {}
        with self._lock:
            items = [(k, np.array(v) * 1e3) for k, v in self._values.items() if v]
        for name, ms in items:
            p50, p95 = np.percentile(ms, (50, 95))
            out[f"{name}_ms"] = f"p50 {p50:.1f} p95 {p95:.1f} max {ms.max():.1f}"
        return out


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
        self._throttle: dict[str, float] = {}
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
        """Count a problem and log it, throttled per counter (one kind never hides another)."""
        self.health.count(counter, n, problem=text)
        now = time.monotonic()
        if now - self._throttle.get(counter, -1e9) >= self._cfg.get("log_throttle_s", 5.0):
            self._throttle[counter] = now
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
                                                 chunk.sample_rate, time.monotonic()), "microphone")
        self._hand_off()

    def _on_frames_lost(self, info: QoSMessageLostInfo) -> None:
        self._warn("frames_lost", f"{info.total_count_change} camera frame(s) lost in transport: "
                   "raw images need Fast DDS's large-data transport in every process of the graph "
                   "(FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA, or config/fastdds_large_data.xml as "
                   "FASTDDS_DEFAULT_PROFILES_FILE; the launch file and runner set it) or "
                   "image_transport:=compressed", info.total_count_change)

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
        level = self.health.level(self._last_diag_counts)
        previous, self._last_diag_counts = self._last_diag_counts, self.health.snapshot()
        behind = {k: self._last_diag_counts.get(k, 0) - previous.get(k, 0)
                  for k in _BEHIND_COUNTERS if self._last_diag_counts.get(k, 0) != previous.get(k, 0)}
        if behind:
            level = max(level, 1)
        if self._config_error:
            level, message = 2, f"not configured: {self._config_error}"
        elif behind and level == 1:
            message = "falling behind: " + ", ".join(f"{n} {k}" for k, n in behind.items())
            if "frames_lost" in behind:
                message += (" (camera frames lost in transport: set FASTDDS_BUILTIN_TRANSPORTS="
                            "LARGE_DATA in the camera's process and this one, or use "
                            "image_transport:=compressed)")
        elif self.health.last_problem and level:
            message = self.health.last_problem
        else:
            message = self._state
        status = DiagnosticStatus(level=_LEVELS[level], name=f"{self.get_fully_qualified_name()}",
                                  message=message, hardware_id="avemo_ros")
        kv = {"state": self._state, **{k: str(v) for k, v in sorted(self._last_diag_counts.items())}}
        if self.estimator is not None:
            kv["model_id"] = self.estimator.model_id
        if self.first_estimate_delay is not None:
            kv["first_estimate_delay_s"] = f"{self.first_estimate_delay:.3f}"
        buffer = self.buffer
        if buffer is not None:
            kv["frames_unused"] = buffer.frames_unused
            kv["frames_held"] = buffer.frames_held
        kv.update(self.timings.summary())
        status.values = [KeyValue(key=k, value=str(v)) for k, v in kv.items()]
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(arr)


def main(args=None) -> None:
    """Run the node alone (lifecycle transitions come from launch or a lifecycle manager)."""
    try:
        with ros_context(args):
            node = PerceptionNode()
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
