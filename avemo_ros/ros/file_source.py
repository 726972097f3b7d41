"""``file_source`` node: publish media files as camera and microphone topics in real time.

Topics (relative, remap as needed):

* ``image`` (sensor_msgs/Image) or ``image/compressed`` (sensor_msgs/CompressedImage),
  RELIABLE, KEEP_LAST 10, VOLATILE: matches both RELIABLE and BEST_EFFORT
  (``qos_profile_sensor_data``) subscriptions.
* ``audio``: audio_common_msgs AudioStamped, AudioDataStamped or AudioData (per
  ``audio_msg_type``), RELIABLE, KEEP_LAST 50 (about 1.6 s of 32 ms chunks).
* ``audio_info`` (ros-drivers AudioInfo, TRANSIENT_LOCAL, again every 5 s like
  audio_capture) for AudioDataStamped/AudioData,
  whose sample format is otherwise known only out of band.
* ``~/done`` (std_msgs/Bool, RELIABLE, TRANSIENT_LOCAL, depth 1): ``False`` when playback
  starts, ``True`` when the playlist has ended (never while looping). Wait for it with
  ``ros2 topic echo --once /file_source/done`` plus a check for ``data: true``.

Header stamps are the node clock at start (after ``start_delay_s``) plus media time, so
video and audio stamps agree with each other and with ``use_sim_time``. ``rate`` changes
the pacing only; stamps keep following media time (like ``ros2 bag play --rate``).
All playlist items are decoded when the node starts; a file that cannot be decoded is
logged and skipped. The schedule is :class:`avemo_ros.playback.MediaPlayback` (stamps by
:mod:`avemo_ros.clip_stream`), paced by :class:`avemo_ros.playback_clock.PlaybackClock`;
parameters: :mod:`avemo_ros.ros.file_source_params`.
"""
from __future__ import annotations

import array
import importlib
from typing import Any, Optional, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Bool

from avemo_ros.audio_codec import chunk_to_audio_data_bytes, chunk_to_audio_stamped
from avemo_ros.clip_stream import clip_span_ns
from avemo_ros.conversions import ConversionError, ns_to_stamp, rgb_to_compressed, rgb_to_image
from avemo_ros.playback import AudioEvent, MediaPlayback, PlaybackError, VideoEvent
from avemo_ros.playback_clock import PlaybackClock
from avemo_ros.ros.audio_input import load_audio_msg_types
from avemo_ros.ros.compat import add_post_set_parameters_callback, ros_context
from avemo_ros.ros.file_source_params import DEFAULT_SAMPLE_FORMAT, PARAMS
from avemo_ros.ros.params import declare, values
from avemo_ros.ros.ros_logging import route_python_logging

__all__ = ["FileSource", "FileSourceError", "PARAMS", "main"]

IMAGE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=10,
    reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE,
)
AUDIO_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=50,
    reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE,
)
LATCHED_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=1,
    reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL,
)

TIMER_PERIOD_S = 0.005
INFO_PERIOD_S = 5.0
_NS_PER_S = 1_000_000_000


class FileSourceError(ValueError):
    """The file source cannot start (configuration or environment problem)."""


class FileSource(Node):
    """Play media files (or pre-decoded clips) as ``image`` + ``audio`` topics in real time.

    ``clips``: optional pre-decoded MediaClip objects played instead of ``media_paths``
    (for embedding and tests). Raises :class:`FileSourceError` when there is nothing
    configured to play or the audio message type is not installed.
    """

    def __init__(self, node_name: str = "file_source", *, clips: Optional[Sequence[Any]] = None,
                 **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        try:
            self._setup(clips)
        except BaseException:
            self.destroy_node()  # do not leave a half-built node in the graph
            raise

    def _setup(self, clips: Optional[Sequence[Any]]) -> None:
        declare(self, PARAMS)
        add_post_set_parameters_callback(self, self._apply_parameters)
        p = values(self, PARAMS)
        # media time on the node clock (sim time included); anchored at the first timer tick
        self._media_clock = PlaybackClock(p["rate"],
                                          now=lambda: self.get_clock().now().nanoseconds)
        self._playback: Optional[MediaPlayback] = None
        self._current_item: tuple[int, int] = (-1, -1)
        self._done_sent = False
        self._legacy_layout: Optional[tuple[int, int]] = None
        self._transport = p["image_transport"]
        self._encoding = p["image_encoding"]
        self._jpeg_quality = int(p["jpeg_quality"])
        self._audio_type = p["audio_msg_type"]
        self._sample_format = p["audio_sample_format"] or DEFAULT_SAMPLE_FORMAT[self._audio_type]
        self._camera_frame = p["camera_frame_id"]
        self._mic_frame = p["microphone_frame_id"]
        self._delay_ns = int(round(p["start_delay_s"] * _NS_PER_S))
        paths = list(p["media_paths"])
        if clips is None and not paths:
            raise FileSourceError("media_paths is empty: give at least one media file to play")

        try:
            self._audio_cls = load_audio_msg_types(self._audio_type)
        except ConversionError as exc:
            raise FileSourceError(str(exc)) from exc
        self._audio_module = importlib.import_module(self._audio_cls.__module__.rsplit(".", 1)[0])

        if self._transport == "raw":
            self._image_pub = self.create_publisher(Image, "image", IMAGE_QOS)
        else:
            self._image_pub = self.create_publisher(CompressedImage, "image/compressed", IMAGE_QOS)
        self._audio_pub = self.create_publisher(self._audio_cls, "audio", AUDIO_QOS)
        self._info_pub = None
        if self._audio_type != "AudioStamped":
            self._info_pub = self.create_publisher(self._audio_module.AudioInfo, "audio_info",
                                                   LATCHED_QOS)
        self._done_pub = self.create_publisher(Bool, "~/done", LATCHED_QOS)

        loaded = [c for c in (list(clips) if clips is not None else self._load(paths))
                  if self._playable(c)]
        audio_rate = int(p["audio_rate"]) or None
        loaded = self._check_audio_layout(loaded, audio_rate)
        if loaded:
            try:
                self._playback = MediaPlayback(
                    loaded, 0, chunk_s=float(p["audio_chunk_s"]), loop=bool(p["loop"]),
                    audio_rate=audio_rate
                )
            except PlaybackError as exc:
                self.get_logger().error(f"cannot play: {exc}")
        if self._playback is None:
            self.get_logger().error("nothing to play: every playlist item failed; publishing done")
            self._finish()
            return
        self._publish_audio_info()  # latched, and again every 5 s as audio_capture does
        self._info_timer = self.create_timer(INFO_PERIOD_S, self._publish_audio_info)
        self._timer = self.create_timer(TIMER_PERIOD_S, self._on_timer)
        self.get_logger().info(
            f"ready: {len(loaded)} item(s), "
            f"{self._playback.playlist_span_ns / _NS_PER_S:.2f} s per pass, "
            f"loop={self._playback.loop}, rate={self._media_clock.rate:g}, "
            f"image={self._transport}, audio={self._audio_type}/{self._sample_format}"
        )

    # ------------------------------------------------------------------ set-up

    def _load(self, paths: list[str]) -> list[Any]:
        """Decode every path; log and skip the ones that fail or are empty."""
        from avemo_ros.media import MediaError, read_media  # PyAV is only needed here

        clips = []
        for path in paths:
            try:
                clip = read_media(path)
            except MediaError as exc:
                self.get_logger().error(f"skipping {path}: {exc}")
                continue
            n, rate = len(clip.frame_times), int(clip.sample_rate)
            video = (f"{n} frames {clip.frames.shape[2]}x{clip.frames.shape[1]}" if n
                     else "no video")
            audio = (f"audio {clip.audio.shape[1]} ch {rate} Hz" if clip.audio.shape[0]
                     else "no audio")
            self.get_logger().info(f"loaded {path}: {video}, {audio}, {clip.duration:.2f} s")
            clips.append(clip)
        return clips

    def _playable(self, clip: Any) -> bool:
        if clip_span_ns(clip) > 0:
            return True
        self.get_logger().error(
            f"skipping {getattr(clip, 'path', '') or 'a clip'}: no video frames and no audio")
        return False

    def _check_audio_layout(self, clips: list[Any], audio_rate: Optional[int]) -> list[Any]:
        """Legacy audio types carry no format per message: keep items whose rate/channels
        match the first."""
        if self._audio_type == "AudioStamped":
            return clips
        layout = None
        kept = []
        for clip in clips:
            if clip.audio is not None and len(clip.audio) and int(clip.sample_rate) > 0:
                this = (audio_rate or int(clip.sample_rate),
                        int(clip.audio.shape[1]) if clip.audio.ndim == 2 else 1)
                if this[1] > 255:
                    self.get_logger().error(
                        f"skipping {getattr(clip, 'path', '')}: {this[1]} channels "
                        "do not fit AudioInfo"
                    )
                    continue
                if layout is None:
                    layout = this
                elif this != layout:
                    self.get_logger().error(
                        f"skipping {getattr(clip, 'path', '')}: audio {this[1]} ch {this[0]} Hz "
                        f"differs from {layout[1]} ch {layout[0]} Hz of the first item "
                        f"({self._audio_type} has no per-message "
                        "format; set audio_rate or use AudioStamped)"
                    )
                    continue
            kept.append(clip)
        self._legacy_layout = layout
        return kept

    def _publish_audio_info(self) -> None:
        if self._info_pub is None or getattr(self, "_legacy_layout", None) is None:
            return
        rate, channels = self._legacy_layout
        width_bits = {"U8": 8, "S8": 8, "S16LE": 16, "S16BE": 16, "S24LE": 24,
                      "S24BE": 24}.get(self._sample_format, 32)
        info = self._audio_module.AudioInfo()
        info.channels = channels
        info.sample_rate = rate
        info.sample_format = self._sample_format
        info.bitrate = rate * channels * width_bits
        info.coding_format = "wave"
        self._info_pub.publish(info)

    # ------------------------------------------------------------------ parameters

    def _apply_parameters(self, params: list[Parameter]) -> None:
        for param in params:
            if param.name == "rate" and self._playback is not None:
                self._media_clock.set_rate(float(param.value))  # media position continuous
                self.get_logger().info(f"playback rate {param.value:g}")
            elif param.name == "loop" and self._playback is not None:
                self._playback.loop = bool(param.value)
                self.get_logger().info(f"loop {'on' if param.value else 'off'}")

    # ------------------------------------------------------------------ playback

    def _on_timer(self) -> None:
        playback = self._playback
        if playback is None or self._done_sent:
            return
        now = self._media_clock.now_ns()
        if not self._media_clock.started:
            if now == 0:  # use_sim_time before the first /clock message
                return
            playback.start_ns = self._media_clock.start(now, self._delay_ns)
            self._done_pub.publish(Bool(data=False))
            self.get_logger().info(
                f"playback starts at {playback.start_ns / _NS_PER_S:.3f} s (node clock)")
        elapsed = self._media_clock.media_ns(now)
        for event in playback.poll(elapsed):
            if (playback.passes, event.item) != self._current_item:
                self._current_item = (playback.passes, event.item)
                self.get_logger().info(
                    f"playing item {event.item}: {playback.paths[event.item]}"
                    + (f" (pass {playback.passes + 1})" if playback.passes else "")
                )
            try:
                if isinstance(event, VideoEvent):
                    self._publish_frame(event)
                else:
                    self._publish_audio(event)
            except ConversionError as exc:
                self.get_logger().error(
                    f"skipping a {type(event).__name__} at {event.stamp_ns} ns: {exc}",
                    throttle_duration_sec=1.0)
            lag = self._media_clock.late_by(event.due_ns, elapsed)
            if lag is not None:
                self.get_logger().warning(f"publishing {lag / 1e6:.0f} ms behind schedule")
        if playback.finished:
            self.get_logger().info(f"playlist finished after {playback.passes + 1} pass(es)")
            self._finish()

    def _finish(self) -> None:
        self._done_sent = True
        self._done_pub.publish(Bool(data=True))
        timer = getattr(self, "_timer", None)
        if timer is not None:
            timer.cancel()

    def _publish_frame(self, event: VideoEvent) -> None:
        if self._transport == "raw":
            msg = rgb_to_image(event.rgb, event.stamp_ns, self._camera_frame, self._encoding)
        else:
            msg = rgb_to_compressed(event.rgb, event.stamp_ns, self._camera_frame, "jpeg",
                                    self._jpeg_quality)
        self._image_pub.publish(msg)

    def _publish_audio(self, event: AudioEvent) -> None:
        if self._audio_type == "AudioStamped":
            msg = chunk_to_audio_stamped(
                event.samples, event.sample_rate, event.stamp_ns, self._mic_frame,
                self._audio_module, self._sample_format,
            )
        else:
            data = array.array("B", chunk_to_audio_data_bytes(event.samples, self._sample_format))
            if self._audio_type == "AudioData":
                msg = self._audio_cls(data=data)
            else:
                msg = self._audio_cls()
                msg.header.stamp = ns_to_stamp(event.stamp_ns)
                msg.header.frame_id = self._mic_frame
                msg.audio.data = data
        self._audio_pub.publish(msg)

    @property
    def finished(self) -> bool:
        """True once ``~/done`` has been published with ``True``."""
        return self._done_sent

    @property
    def playback(self) -> Optional[MediaPlayback]:
        """The playback schedule (None when nothing could be loaded)."""
        return self._playback


def main(args: Optional[list[str]] = None) -> int:
    """Entry point of the ``file_source`` executable."""
    try:
        with ros_context(args):
            try:
                node = FileSource()
            except (FileSourceError, ParameterException) as exc:
                rclpy.logging.get_logger("file_source").fatal(str(exc))
                return 1
            route_python_logging(node)
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            try:
                executor.spin()
            finally:
                executor.shutdown()
                node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
