"""The microphone side of a node: which audio_common_msgs, which topics, QoS, format, clock.

Two packages named ``audio_common_msgs`` exist:

- **ros_drivers** (ros-drivers/audio_common, the one released to Humble, Jazzy and
  Kilted): ``AudioData{uint8[] data}``, ``AudioDataStamped{header, audio}``, ``AudioInfo``.
  Its ``audio_capture`` publishes AudioData on ``audio``, AudioDataStamped on
  ``audio_stamped`` and the layout on ``audio_info`` (reliable), MP3 by default.
- **mgonzs13** (mgonzs13/audio_common 4.x, built from source): ``AudioStamped`` with typed
  sample arrays and the layout inside each message; its capturer publishes best effort.

:class:`AudioInput` subscribes whichever ``audio_msg_type`` names (best effort by default,
which matches reliable and best-effort publishers alike), reads the layout from
``audio_info`` when the driver publishes it (parameters are the fallback; a disagreement
is reported), decodes MP3, maps a foreign header clock onto the node clock, and hands
:class:`~avemo_ros.audio_codec.AudioChunk` s on. Every problem goes to ``warn(Problem, text)``.
The bytes are read by the core :class:`~avemo_ros.stream_events.AudioMessageReader`, the
same one offline evaluation uses.
"""
from __future__ import annotations

import importlib
import os
import time
from typing import Any, Callable, Optional

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from ..audio_codec import AUDIO_MSG_TYPES, AudioChunk
from ..audio_stream import ByteFormat, ClockMapper
from ..conversions import ConversionError
from ..input_problems import Problem, problem_of
from ..stream_events import AudioMessageReader
from .compat import SubscriptionEventCallbacks

#: audio_msg_type -> the audio_common_msgs flavour that defines it
FLAVOUR_OF = {"AudioStamped": "mgonzs13", "AudioDataStamped": "ros_drivers",
              "AudioData": "ros_drivers"}
FLAVOUR_TYPES = {"ros_drivers": ("AudioDataStamped", "AudioData"), "mgonzs13": ("AudioStamped",)}
CODING_CHOICES = ("auto", "wave", "mp3")
RELIABILITY_CHOICES = ("auto", "best_effort", "reliable")
CLOCK_CHOICES = ("auto", "header")


def installed_flavour() -> Optional[str]:
    """``ros_drivers``, ``mgonzs13`` or None: which audio_common_msgs this process can import."""
    try:
        module = importlib.import_module("audio_common_msgs.msg")
    except ImportError:
        return None
    if hasattr(module, "AudioStamped"):
        return "mgonzs13"
    if hasattr(module, "AudioDataStamped"):
        return "ros_drivers"
    return None


def load_audio_msg_types(kind: str) -> type:
    """Message class ``audio_common_msgs.msg.<kind>`` (AudioStamped, AudioDataStamped, AudioData).

    Raises :class:`ConversionError` naming the flavour that is installed and the setting
    that fits it, or what to install.
    """
    if kind not in AUDIO_MSG_TYPES:
        raise ConversionError(f"unknown audio message type {kind!r} "
                              f"(supported: {', '.join(AUDIO_MSG_TYPES)})")
    distro = os.environ.get("ROS_DISTRO") or "<distro>"
    wanted = FLAVOUR_OF[kind]
    if wanted == "ros_drivers":
        hint = (f"install ros-{distro}-audio-common-msgs "
                "(or build test/fixtures/audio_common_msgs_ros_drivers)")
    else:
        hint = ("build mgonzs13/audio_common from source "
                "(or test/fixtures/audio_common_msgs_mgonzs13)")
    have = installed_flavour()
    if have is None:
        raise ConversionError(f"audio_msg_type {kind} needs audio_common_msgs ({wanted} flavour), "
                              f"which is not installed: {hint}")
    if have != wanted:
        fits = " or ".join(f"audio_msg_type:={t}" for t in FLAVOUR_TYPES[have])
        raise ConversionError(
            f"audio_msg_type {kind} is a {wanted} audio_common_msgs type, but the installed "
            f"audio_common_msgs is the {have} flavour: set {fits}, or {hint}")
    return getattr(importlib.import_module("audio_common_msgs.msg"), kind)


def audio_qos(reliability: str) -> QoSProfile:
    """Subscription QoS for the audio stream; best effort matches every publisher."""
    policy = (ReliabilityPolicy.RELIABLE if reliability == "reliable"
              else ReliabilityPolicy.BEST_EFFORT)
    return QoSProfile(depth=200, history=HistoryPolicy.KEEP_LAST, reliability=policy,
                      durability=DurabilityPolicy.VOLATILE)


#: audio_info QoS: volatile matches audio_capture (re-published every 5 s) and latched
#: publishers alike, but gets a latched message only if it is published again; a
#: transient-local subscription (added once a latched publisher shows up in the graph)
#: gets it at once. Subscribing transient local from the start would make audio_capture
#: refuse the subscription and warn.
INFO_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)
LATCHED_INFO_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                              durability=DurabilityPolicy.TRANSIENT_LOCAL)
#: PCM that arrives before the announced audio_info: dropped for at most this long, then
#: read with the parameters' layout.
INFO_WAIT_S = 6.0


class AudioInput:
    """Audio subscriptions of ``node`` and the conversion of their messages to chunks.

    ``cfg``: the node's parameter values (audio_msg_type, audio_coding_format,
    audio_sample_format, audio_channels, audio_sample_rate, audio_reliability,
    audio_clock). ``on_chunk(chunk)`` gets every chunk; ``warn(Problem, text, n=1)`` every
    problem (messages lost in transport included); ``count(counter)`` plain events;
    ``peer_stamp()`` the camera's latest stamp (ns, or None) for telling a foreign audio
    clock from a replayed one.
    Threads: the node's executor thread only (subscription and timer callbacks).
    """

    def __init__(self, node: Any, cfg: dict[str, Any], on_chunk: Callable[[AudioChunk], None],
                 warn: Callable[..., None], count: Callable[[str], None],
                 peer_stamp: Callable[[], Optional[int]] = lambda: None):
        self._node, self._cfg, self._peer_ns = node, cfg, peer_stamp
        self._on_chunk, self._warn, self._count = on_chunk, warn, count
        self.kind = cfg["audio_msg_type"]
        self.msg_type = load_audio_msg_types(self.kind)
        self.info_type = (getattr(importlib.import_module("audio_common_msgs.msg"), "AudioInfo")
                          if FLAVOUR_OF[self.kind] == "ros_drivers" else None)
        self.frame_id = ""
        self._clock = ClockMapper(cfg["audio_clock"])
        self._params_format = ByteFormat(
            coding=cfg["audio_coding_format"], sample_format=cfg["audio_sample_format"],
            channels=cfg["audio_channels"], sample_rate=cfg["audio_sample_rate"])
        self.reader = AudioMessageReader(
            self.kind, self._params_format, hold_pcm=self._await_info,
            warn=lambda text: self._warn(Problem.AUDIO_INFO_MISMATCH, text))
        self._subs: list = []
        self._on_lost: Callable[[Any], None] = lambda info: None
        self.reliability = "reliable"
        self._latched_sub = None
        self._graph_checked = -1.0  # monotonic time of the last audio_info publisher check
        self._info_pubs = 0
        self._waiting_since: Optional[float] = None

    # --- subscriptions ----------------------------------------------------------------
    def subscribe(self, on_lost: Optional[Callable[[Any], None]] = None) -> list:
        """Create the audio (and audio_info) subscriptions; returns them. ``on_lost(info)``
        hears of messages lost in transport (default: reported as AUDIO_LOST).

        ``audio_reliability: auto`` subscribes reliable (no loss from reliable publishers,
        e.g. audio_capture, bag players) and turns best effort when a best-effort
        publisher (mgonzs13's capturer) is on the topic or shows up later.
        """
        self._on_lost = on_lost or self._report_lost
        mode = self._cfg["audio_reliability"]
        first = "best_effort" if mode == "best_effort" else "reliable"
        self._subs = [self._audio_subscription(first)]
        if mode == "auto" and any(
                i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
                for i in self._node.get_publishers_info_by_topic(self._subs[0].topic_name)):
            self._switch_to_best_effort()
        if self.info_type is not None:
            self._subs.append(self._node.create_subscription(
                self.info_type, "audio_info", self._on_info, INFO_QOS))
            self._info_publishers()
        return self._subs

    def _report_lost(self, info: Any) -> None:
        n = info.total_count_change
        self._warn(Problem.AUDIO_LOST, f"{n} audio message(s) lost in transport", n)

    def _info_publishers(self) -> int:
        """Publishers on audio_info; adds the transient-local subscription for latched ones."""
        if self.info_type is None or len(self._subs) < 2:
            return 0
        self._graph_checked = time.monotonic()
        infos = self._node.get_publishers_info_by_topic(self._subs[1].topic_name)
        if self._latched_sub is None and any(
                i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos):
            self._latched_sub = self._node.create_subscription(
                self.info_type, "audio_info", self._on_info, LATCHED_INFO_QOS)
            self._subs.append(self._latched_sub)
        return len(infos)

    def unsubscribe(self) -> None:
        """Destroy the subscriptions and forget the stream state."""
        for sub in self._subs:
            self._node.destroy_subscription(sub)
        self._subs = []
        self._latched_sub = None
        self.reader.reset()
        self._waiting_since = None

    @property
    def topic(self) -> str:
        """Resolved audio topic ('' before subscribe)."""
        return self._subs[0].topic_name if self._subs else ""

    def _audio_subscription(self, reliability: str) -> Any:
        self.reliability = reliability
        events = SubscriptionEventCallbacks(message_lost=self._on_lost,
                                            incompatible_qos=self._on_incompatible)
        return self._node.create_subscription(
            self.msg_type, "audio", self._on_audio, audio_qos(reliability), event_callbacks=events)

    def _switch_to_best_effort(self) -> None:
        if not self._subs or self.reliability == "best_effort":
            return
        self._node.destroy_subscription(self._subs[0])
        self._subs[0] = self._audio_subscription("best_effort")
        self._node.get_logger().info(f"{self.topic}: a best-effort publisher: audio subscription "
                                     "is best effort now (audio_reliability auto)")

    def _on_incompatible(self, info: Any) -> None:
        if self._cfg["audio_reliability"] == "auto" and self.reliability == "reliable":
            timer = None

            def switch() -> None:  # not from inside the subscription's own event callback
                self._node.destroy_timer(timer)
                self._switch_to_best_effort()

            timer = self._node.create_timer(0.0, switch)
            return
        self._warn(Problem.AUDIO_QOS_INCOMPATIBLE,
                   f"a publisher on {self.topic} has QoS this subscription "
                   f"cannot match (policy id {getattr(info, 'last_policy_kind', '?')}): set "
                   "audio_reliability:=best_effort, which matches every publisher")

    def check_graph(self) -> None:
        """Report publishers of another audio type on our topic (called periodically)."""
        if not self._subs:
            return
        self._info_publishers()
        ours = f"audio_common_msgs/msg/{self.kind}"
        for info in self._node.get_publishers_info_by_topic(self.topic):
            if info.topic_type != ours:
                alt = info.topic_type.rsplit("/", 1)[-1]
                hint = (f"audio_msg_type:={alt}" if alt in AUDIO_MSG_TYPES else
                        "a remap of audio to the driver's audio topic")
                self._warn(Problem.AUDIO_TYPE_MISMATCH,
                           f"{info.node_name} publishes {info.topic_type} on "
                           f"{self.topic}, but this node expects {ours}: set {hint}")

    # --- format -----------------------------------------------------------------------
    @property
    def info_format(self) -> Optional[ByteFormat]:
        """The layout announced on audio_info (None before one arrived)."""
        return self.reader.info

    def _on_info(self, info: Any) -> None:
        fmt = ByteFormat.from_info(info)
        if not self.reader.set_info(fmt):
            return
        self._node.get_logger().info(
            f"audio format from {self._subs[1].topic_name}: {fmt.describe()}")
        p = self._params_format
        differs = [name for name, a, b in (
            ("audio_coding_format", p.coding, fmt.coding),
            ("audio_sample_format", p.sample_format, fmt.sample_format),
            ("audio_channels", p.channels, fmt.channels),
            ("audio_sample_rate", p.sample_rate, fmt.sample_rate))
            if a != b and not (name == "audio_coding_format" and a == "auto")
            and not (fmt.coding == "mp3" and name != "audio_coding_format")]
        if differs:
            self._warn(Problem.AUDIO_INFO_MISMATCH, "audio_info disagrees with the parameters "
                       f"{', '.join(differs)} ({fmt.describe()} vs {p.describe()}): "
                       "using audio_info")

    def _await_info(self) -> bool:
        """True while PCM should wait for an audio_info that a publisher will send."""
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
        if now - self._waiting_since > INFO_WAIT_S:
            return False
        if now - self._graph_checked > 0.2:
            self._info_pubs = self._info_publishers()
        if not self._info_pubs:
            return False
        self._count("audio_waiting_for_info")
        return True

    # --- messages ---------------------------------------------------------------------
    def _on_audio(self, msg: Any) -> None:
        self._count("audio_chunks_received")
        try:
            chunk = self.to_chunk(msg)
        except (ConversionError, AttributeError, TypeError) as e:
            self._warn(problem_of(e, Problem.AUDIO_INVALID), f"audio dropped: {e}")
            return
        if chunk is not None:
            self._on_chunk(chunk)

    def to_chunk(self, msg: Any) -> Optional[AudioChunk]:
        """One message -> a chunk on the node clock (None while an MP3 frame is incomplete
        or PCM waits for the announced audio_info)."""
        now = self._node.get_clock().now().nanoseconds
        if self.kind == "AudioData":  # no header: arrival time, made sample-continuous
            self._warn(Problem.AUDIO_WITHOUT_HEADER, "AudioData has no header: chunks are "
                       "stamped on arrival (AudioDataStamped keeps the driver's stamps)")
            return self.reader.read(msg, now)
        self.frame_id = msg.header.frame_id
        chunk = self.reader.read(msg, now)
        if chunk is None:
            return None
        changes = self._clock.changes
        chunk.stamp_ns = self._clock.map(chunk.stamp_ns, now - chunk.duration_ns, self._peer_ns())
        if self._clock.changes != changes:
            offset_s = self._clock.offset_ns / 1e9
            self._warn(Problem.AUDIO_CLOCK_MAPPED, (
                f"audio header stamps are {offset_s:+.1f} s from the node clock and the camera's "
                "(audio_capture stamps with its GStreamer clock): mapping them by that fixed "
                "offset (audio_clock:=header turns this off)") if offset_s else
                "audio header stamps agree with the camera's again: no clock mapping")
        return chunk
