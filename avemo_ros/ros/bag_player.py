"""``bag_player`` node: publish rosbag2 recordings with their original timing.

    python -m avemo_ros.ros.bag_player BAG... [--rate 1.0] [--loop] [--clock]
        [--topics /image /audio] [--start-paused] [--wait-subscribers S] [--ros-args ...]

Bags (directories or single .mcap / .db3 files, read with ``rosbags``) play one after the
other; each message is due at the playlist offset of its log time (its time relative to
the start of its bag, plus the length of the bags before it), divided by ``rate``. Due
times are scheduled against one monotonic start time (re-anchored only when ``rate`` or
``paused`` changes), so timing never drifts the way chained ``sleep(delta)`` calls do.

The serialized CDR of each message is published as is (no deserialize / serialize round
trip); only the first message of each topic is deserialized once, to check that the
bag's definition matches the installed type. Types resolve by name through importlib
(``sensor_msgs/msg/Image`` -> ``sensor_msgs.msg.Image``); a type that is not installed
is logged once and its topic skipped.

QoS per type: camera types (``sensor_msgs/Image``, ``CompressedImage``, ``CameraInfo``)
get sensor-data QoS (BEST_EFFORT, KEEP_LAST 5; ``camera_qos:=reliable`` for reliable
subscribers), audio types (``audio_common_msgs/*``) RELIABLE KEEP_LAST 200, everything
else RELIABLE KEEP_LAST 10.

``publish_clock`` publishes ``/clock`` (rosgraph_msgs/Clock, RELIABLE KEEP_LAST 1, which
BEST_EFFORT ``use_sim_time`` subscribers also match) every ``1 / clock_frequency`` s with
the bag time being played (the log time at the current playlist offset), so nodes can
run with ``use_sim_time``. It keeps ticking (at a standing time) while paused, and keeps
advancing past the end of the playlist until the node is destroyed, so that nodes still
busy with the last messages measure their real delays.

``~/done`` (std_msgs/Bool, RELIABLE, TRANSIENT_LOCAL, depth 1): ``False`` when playback
starts, ``True`` when the playlist has ended (never while looping), like ``file_source``.
"""
from __future__ import annotations

import argparse
import importlib
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)
from rclpy.serialization import deserialize_message
from rosgraph_msgs.msg import Clock
from std_msgs.msg import Bool

from .params import ParamSpec, declare, values
from .compat import add_post_set_parameters_callback, ros_context
from .ros_logging import route_python_logging

__all__ = ["BagPlayer", "BagPlayerError", "PlaylistClock", "QOS_BY_KIND", "main", "message_class",
           "qos_for_type"]

NS = 1_000_000_000
_LAG_WARN_NS = 200_000_000  # warn when publishing falls this far behind schedule

CAMERA_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage",
                "sensor_msgs/msg/CameraInfo")
AUDIO_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=200,
                       reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.VOLATILE)
DEFAULT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                         reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE)
RELIABLE_CAMERA_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                                 reliability=ReliabilityPolicy.RELIABLE,
                                 durability=DurabilityPolicy.VOLATILE)
CLOCK_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                       reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.VOLATILE)
LATCHED_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                         reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
#: QoS by kind of topic (see :func:`qos_for_type`).
QOS_BY_KIND = {"camera": qos_profile_sensor_data, "camera_reliable": RELIABLE_CAMERA_QOS,
               "audio": AUDIO_QOS, "other": DEFAULT_QOS}

PARAMS = (
    ParamSpec("rate", 1.0, "Playback speed factor (1 = recorded speed); may change while playing.",
              range=(0.01, 100.0)),
    ParamSpec("loop", False, "Restart the playlist at its end; may change while playing."),
    ParamSpec("paused", False, "Hold playback (the clock stands still); set false to resume."),
    ParamSpec("publish_clock", False, "Publish /clock with the bag time, for use_sim_time nodes.",
              read_only=True),
    ParamSpec("clock_frequency", 100.0, "/clock messages per second (wall time).",
              range=(1.0, 1000.0), read_only=True),
    ParamSpec("start_delay_s", 0.0, "Wait this long (wall time) before playing.",
              range=(0.0, 3600.0), read_only=True),
    ParamSpec("wait_for_subscribers_s", 0.0, "Before playing, wait up to this long (wall time) "
              "until every camera and audio topic (every topic when there is none) has a "
              "subscriber (0: do not wait).",
              range=(0.0, 3600.0), read_only=True),
    ParamSpec("camera_qos", "sensor_data", "QoS of camera topics: sensor_data (BEST_EFFORT, "
              "KEEP_LAST 5) or reliable (KEEP_LAST 10; also serves reliable subscribers).",
              choices=("sensor_data", "reliable"), read_only=True),
)
_RUNTIME = ("rate", "loop", "paused")


class BagPlayerError(ValueError):
    """The player cannot start (no bag, unreadable bag, nothing playable)."""


def message_class(msgtype: str) -> type:
    """Installed message class for a type name (``pkg/msg/Name`` or ``pkg/Name``).

    Raises ImportError / AttributeError (with the reason) when it is not installed.
    """
    parts = msgtype.strip("/").split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or not all(parts):
        raise ImportError(f"not a message type name: {msgtype!r}")
    module = importlib.import_module(f"{parts[0]}.{parts[1]}")
    cls = getattr(module, parts[2], None)
    if cls is None:
        raise AttributeError(f"{parts[0]}.{parts[1]} has no {parts[2]}")
    return cls


def qos_for_type(msgtype: str, camera_qos: str = "sensor_data") -> QoSProfile:
    """The QoS a topic of ``msgtype`` is republished with (see the module docstring)."""
    if msgtype in CAMERA_TYPES:
        return QOS_BY_KIND["camera" if camera_qos == "sensor_data" else "camera_reliable"]
    if msgtype.startswith("audio_common_msgs/"):
        return QOS_BY_KIND["audio"]
    return QOS_BY_KIND["other"]


class PlaylistClock:
    """Playlist offset (ns) as a function of monotonic time, with rate changes and pause.

    ``offset(now) = anchor_offset + (now - anchor_mono) * rate`` while playing; changing
    the rate or pausing re-anchors at the current offset, so the offset stays continuous.
    Thread-safe.
    """

    def __init__(self, rate: float = 1.0, paused: bool = False):
        self._lock = threading.Lock()
        self._rate = float(rate)
        self._paused = bool(paused)
        self._anchor_mono_ns: Optional[int] = None  # None: not started
        self._anchor_offset_ns = 0

    @staticmethod
    def now_ns() -> int:
        return time.monotonic_ns()

    def start(self, now_ns: Optional[int] = None) -> None:
        with self._lock:
            self._anchor_mono_ns = self.now_ns() if now_ns is None else now_ns
            self._anchor_offset_ns = 0

    @property
    def started(self) -> bool:
        return self._anchor_mono_ns is not None

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def paused(self) -> bool:
        return self._paused

    def _offset_locked(self, now_ns: int) -> int:
        if self._anchor_mono_ns is None:
            return 0
        if self._paused:
            return self._anchor_offset_ns
        return self._anchor_offset_ns + int((now_ns - self._anchor_mono_ns) * self._rate)

    def offset(self, now_ns: Optional[int] = None) -> int:
        """Playlist offset at monotonic time ``now_ns`` (default: now)."""
        with self._lock:
            return self._offset_locked(self.now_ns() if now_ns is None else now_ns)

    def wall_until(self, offset_ns: int, now_ns: Optional[int] = None) -> Optional[float]:
        """Seconds of wall time until ``offset_ns`` is reached (None while paused)."""
        with self._lock:
            now = self.now_ns() if now_ns is None else now_ns
            if self._paused or self._anchor_mono_ns is None:
                return None
            return max(0.0, (offset_ns - self._offset_locked(now)) / self._rate / NS)

    def shift(self, delta_ns: int) -> None:
        """Move the offset by ``delta_ns`` (the loop restart moves it back to 0)."""
        with self._lock:
            self._anchor_offset_ns += delta_ns

    def set_rate(self, rate: float) -> None:
        self._reanchor(rate=float(rate))

    def set_paused(self, paused: bool) -> None:
        self._reanchor(paused=bool(paused))

    def _reanchor(self, rate: Optional[float] = None, paused: Optional[bool] = None) -> None:
        with self._lock:
            now = self.now_ns()
            if self._anchor_mono_ns is not None:
                self._anchor_offset_ns = self._offset_locked(now)
                self._anchor_mono_ns = now
            if rate is not None:
                self._rate = rate
            if paused is not None:
                self._paused = paused


@dataclass
class _Bag:
    path: Path
    start_ns: int  # log time of the first message
    end_ns: int  # log time of the last message
    topics: dict[str, str]  # topic -> msgtype

    @property
    def span_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)


def _open_reader(path: Path):
    from rosbags.rosbag2 import Reader

    return Reader(path)


def _scan_bag(path: Path) -> _Bag:
    """Time range and topics of a bag. Raises BagPlayerError when it cannot be read."""
    if not path.exists():
        raise BagPlayerError(f"bag {path} does not exist")
    try:
        with _open_reader(path) as reader:
            if reader.message_count == 0:
                raise BagPlayerError(f"bag {path} holds no messages")
            topics = {c.topic: c.msgtype for c in reader.connections}
            return _Bag(path, int(reader.start_time), int(reader.end_time) - 1, topics)
    except BagPlayerError:
        raise
    except Exception as exc:  # rosbags raises its own error types for corrupt bags
        raise BagPlayerError(f"cannot read bag {path}: {exc}") from exc


class BagPlayer(Node):
    """Publish rosbag2 bags with their original timing (see the module docstring).

    ``bag_paths`` / ``topics`` given here take precedence over the parameters of the same
    names. Playback runs in its own thread, so a busy executor (e.g. inference in the same
    process) does not delay it. Raises :class:`BagPlayerError` when nothing can be played.
    """

    def __init__(self, node_name: str = "bag_player", *, bag_paths: Optional[Sequence[str]] = None,
                 topics: Optional[Sequence[str]] = None, **kwargs: Any):
        super().__init__(node_name, **kwargs)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: Optional[threading.Thread] = None
        try:
            self._setup(bag_paths, topics)
        except BaseException:
            self.destroy_node()
            raise

    # ------------------------------------------------------------------ set-up

    def _setup(self, bag_paths: Optional[Sequence[str]], topics: Optional[Sequence[str]]) -> None:
        self.declare_parameter("bag_paths", Parameter.Type.STRING_ARRAY, _array_descriptor(
            "Bags to play in order (rosbag2 directories or .mcap / .db3 files)."))
        self.declare_parameter("topics", Parameter.Type.STRING_ARRAY, _array_descriptor(
            "Play only these topics (empty: all)."))
        declare(self, PARAMS)
        add_post_set_parameters_callback(self, self._apply_parameters)
        self._cfg = values(self, PARAMS)
        empty = Parameter("x", Parameter.Type.STRING_ARRAY, [])
        paths = list(bag_paths) if bag_paths else list(
            self.get_parameter_or("bag_paths", empty).value or [])
        wanted = list(topics) if topics else list(
            self.get_parameter_or("topics", empty).value or [])
        if not paths:
            raise BagPlayerError("no bag to play: give bag paths (bag_paths parameter)")
        self.bags = [_scan_bag(Path(p)) for p in paths]
        self.clock = PlaylistClock(self._cfg["rate"], self._cfg["paused"])
        self.loop = bool(self._cfg["loop"])
        self._topic_pubs: dict[str, Any] = {}
        self._types: dict[str, str] = {}
        self._checked: set[str] = set()
        self._skipped: set[str] = set()
        self.published: dict[str, int] = {}
        self.passes = 0
        self._finished = False
        self._lag_warned_at = 0.0
        self._bag_time_ns = self.bags[0].start_ns
        self._bag_base_ns: Optional[int] = None  # playlist offset of the bag being played
        self._bag_start_ns = self.bags[0].start_ns
        self._next_tick_ns = 0
        self._state_lock = threading.Lock()
        self._make_publishers(wanted)
        if not self._topic_pubs:
            raise BagPlayerError("nothing to play: no topic of the bags has an installed type"
                                 + (f" among {wanted}" if wanted else ""))
        sensors = [t for t, ty in self._types.items()
                   if ty in CAMERA_TYPES or ty.startswith("audio_common_msgs/")]
        self._wait_topics = sorted(sensors or self._topic_pubs)
        self._done_pub = self.create_publisher(Bool, "~/done", LATCHED_QOS)
        self._clock_pub = (self.create_publisher(Clock, "/clock", CLOCK_QOS)
                           if self._cfg["publish_clock"] else None)
        if self.get_parameter("use_sim_time").value:
            self.get_logger().warning("use_sim_time is set on the player, which is the clock "
                                      "source: it schedules on wall time regardless")
        span = sum(b.span_ns for b in self.bags) / NS
        self.get_logger().info(
            f"ready: {len(self.bags)} bag(s), {span:.2f} s per pass, topics "
            f"{', '.join(f'{t} [{self._types[t]}]' for t in sorted(self._topic_pubs))}, "
            f"rate={self.clock.rate:g}, loop={self.loop}, clock={self._clock_pub is not None}, "
            f"paused={self.clock.paused}")
        self._thread = threading.Thread(target=self._run, name="bag_player", daemon=True)
        self._thread.start()

    def _make_publishers(self, wanted: Sequence[str]) -> None:
        found = {}
        for bag in self.bags:
            for topic, msgtype in bag.topics.items():
                if wanted and topic not in wanted:
                    continue
                if found.setdefault(topic, msgtype) != msgtype:
                    self.get_logger().error(f"{bag.path}: topic {topic} has type {msgtype}, "
                                            f"another bag {found[topic]}: skipping it there")
        for topic in wanted:
            if topic not in found:
                self.get_logger().warning(f"topic {topic} is in none of the bags")
        for topic, msgtype in sorted(found.items()):
            try:
                cls = message_class(msgtype)
            except (ImportError, AttributeError) as exc:
                self.get_logger().error(f"skipping topic {topic}: type {msgtype} is not installed "
                                        f"({exc}); source the package that defines it")
                self._skipped.add(topic)
                continue
            qos = qos_for_type(msgtype, self._cfg["camera_qos"])
            self._topic_pubs[topic] = self.create_publisher(cls, topic, qos)
            self._types[topic] = msgtype
            self.published[topic] = 0

    def _apply_parameters(self, params: list[Parameter]) -> None:
        for p in params:
            if p.name == "rate":
                self.clock.set_rate(float(p.value))
                self.get_logger().info(f"playback rate {p.value:g}")
            elif p.name == "paused":
                self.clock.set_paused(bool(p.value))
                self.get_logger().info("paused" if p.value else "resumed")
            elif p.name == "loop":
                self.loop = bool(p.value)
                self.get_logger().info(f"loop {'on' if p.value else 'off'}")
        self._wake.set()

    # ------------------------------------------------------------------ public state

    @property
    def finished(self) -> bool:
        """True once ``~/done`` has been published with ``True``."""
        return self._finished

    @property
    def span_ns(self) -> int:
        """Length of one pass over the playlist (bag time), ns."""
        return sum(b.span_ns for b in self.bags)

    def bag_time_ns(self, now_mono_ns: Optional[int] = None) -> int:
        """Bag time (log time of the bag being played) at monotonic time ``now_mono_ns``.

        Before playback starts: the first bag's start; between messages it advances with
        the playlist offset, so it is the sim time that ``/clock`` carries. After the end
        it keeps advancing (at ``rate``) past the last message.
        """
        with self._state_lock:
            bag_time, base, bag_start = self._bag_time_ns, self._bag_base_ns, self._bag_start_ns
        if base is None or not self.clock.started:
            return bag_time
        return max(bag_start, bag_start + (self.clock.offset(now_mono_ns) - base))

    def pause(self) -> None:
        """Hold playback (same as setting the ``paused`` parameter)."""
        self.set_parameters([Parameter("paused", Parameter.Type.BOOL, True)])

    def resume(self) -> None:
        """Resume playback (same as clearing the ``paused`` parameter)."""
        self.set_parameters([Parameter("paused", Parameter.Type.BOOL, False)])

    def wait_done(self, timeout: float) -> bool:
        """Block until the playlist finished (or ``timeout`` s passed); True when finished."""
        deadline = time.monotonic() + timeout
        while not self._finished and time.monotonic() < deadline:
            time.sleep(0.02)
        return self._finished

    def stop(self) -> None:
        """Stop the playback thread (no ``done`` is published)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)

    def destroy_node(self) -> None:
        self.stop()
        super().destroy_node()

    # ------------------------------------------------------------------ playback thread

    def _run(self) -> None:
        try:
            if not self._wait_subscribers() or not self._sleep_wall(self._cfg["start_delay_s"]):
                return
            self.clock.start()
            self._next_tick_ns = time.monotonic_ns()
            self._done_pub.publish(Bool(data=False))
            self.get_logger().info("playback starts")
            base = 0
            while not self._stop.is_set():
                for bag in self.bags:
                    if not self._play_bag(bag, base):
                        return
                    base += bag.span_ns
                if not self.loop:
                    break
                self.passes += 1
                self.clock.shift(-base)  # the next pass starts at offset 0 again
                base = 0
                self.get_logger().info(f"loop: pass {self.passes + 1}")
            self._finished = True
            self._done_pub.publish(Bool(data=True))
            self.get_logger().info(
                f"playlist finished after {self.passes + 1} pass(es): "
                + ", ".join(f"{t} {n}" for t, n in sorted(self.published.items())))
            # nodes still busy with the last messages see time pass
            if self._clock_pub is not None:
                self._wait_until(2**62)
        except Exception as exc:  # the thread must not die silently
            self.get_logger().error(f"playback failed: {type(exc).__name__}: {exc}")

    def _wait_subscribers(self) -> bool:
        timeout = self._cfg["wait_for_subscribers_s"]
        if timeout <= 0:
            return True
        deadline = time.monotonic() + timeout
        while not self._stop.is_set():
            missing = [t for t in self._wait_topics
                       if self._topic_pubs[t].get_subscription_count() == 0]
            if not missing:
                return True
            if time.monotonic() >= deadline:
                self.get_logger().warning(f"no subscriber on {', '.join(missing)} after "
                                          f"{timeout:g} s: playing anyway")
                return True
            self._stop.wait(0.02)
        return False

    def _sleep_wall(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            self._stop.wait(min(0.05, deadline - time.monotonic()))
        return not self._stop.is_set()

    def _play_bag(self, bag: _Bag, base_ns: int) -> bool:
        """Publish one bag starting at playlist offset ``base_ns``; False when stopped."""
        with self._state_lock:
            self._bag_base_ns, self._bag_start_ns = base_ns, bag.start_ns
        for topic, log_ns, raw in self._messages(bag):
            if not self._wait_until(base_ns + (log_ns - bag.start_ns)):
                return False
            with self._state_lock:
                self._bag_time_ns = log_ns
            self._publish(topic, raw, bag)
        return self._wait_until(base_ns + bag.span_ns)

    def _messages(self, bag: _Bag) -> Iterator[tuple[str, int, bytes]]:
        try:
            with _open_reader(bag.path) as reader:
                conns = [c for c in reader.connections
                         if c.topic in self._topic_pubs and self._types[c.topic] == c.msgtype]
                for conn, log_ns, raw in reader.messages(connections=conns):
                    yield conn.topic, int(log_ns), bytes(raw)
        except Exception as exc:
            self.get_logger().error(
                f"reading {bag.path} failed: {exc}; going on with the next bag")

    def _wait_until(self, offset_ns: int) -> bool:
        """Sleep until the playlist offset reaches ``offset_ns``, ticking /clock meanwhile."""
        while not self._stop.is_set():
            now = time.monotonic_ns()
            self._tick_clock(now)
            wait = self.clock.wall_until(offset_ns, now)
            if wait is not None and wait <= 0.0:
                lag = self.clock.offset(now) - offset_ns
                if lag > _LAG_WARN_NS and time.monotonic() - self._lag_warned_at > 2.0:
                    self._lag_warned_at = time.monotonic()
                    self.get_logger().warning(f"publishing {lag / 1e6:.0f} ms behind schedule")
                return True
            timeout = 0.05 if wait is None else wait
            if self._clock_pub is not None:
                timeout = min(timeout, max(0.0, (self._next_tick_ns - now) / NS))
            self._wake.wait(timeout)
            self._wake.clear()
        return False

    def _tick_clock(self, now_ns: int) -> None:
        if self._clock_pub is None or now_ns < self._next_tick_ns:
            return
        period = int(NS / self._cfg["clock_frequency"])
        # next tick on the grid; ticks missed while busy are skipped, not bunched
        self._next_tick_ns += period * max(1, (now_ns - self._next_tick_ns) // period + 1)
        t = self.bag_time_ns(now_ns)
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = divmod(t, NS)
        self._clock_pub.publish(msg)

    def _publish(self, topic: str, raw: bytes, bag: _Bag) -> None:
        if topic not in self._checked:
            self._checked.add(topic)
            try:
                deserialize_message(raw, self._topic_pubs[topic].msg_type)
            except Exception as exc:
                self.get_logger().error(
                    f"skipping topic {topic}: its messages in {bag.path} do not deserialize as "
                    f"the installed {self._types[topic]} ({exc}); the bag's definition differs")
                self._skipped.add(topic)
        if topic in self._skipped:
            return
        self._topic_pubs[topic].publish(raw)
        self.published[topic] += 1


def _array_descriptor(text: str):
    from rcl_interfaces.msg import ParameterDescriptor, ParameterType

    return ParameterDescriptor(type=ParameterType.PARAMETER_STRING_ARRAY, description=text,
                               read_only=True)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description="publish rosbag2 bags with their original timing")
    ap.add_argument("bags", nargs="+", type=Path, help="rosbag2 directories or .mcap/.db3 files")
    ap.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    ap.add_argument("--loop", action="store_true", help="restart at the end")
    ap.add_argument("--clock", action="store_true", help="publish /clock from the bag time")
    ap.add_argument("--clock-frequency", type=float, default=100.0, help="/clock messages per s")
    ap.add_argument("--topics", nargs="+", default=[], help="play only these topics")
    ap.add_argument("--start-paused", action="store_true",
                    help="start paused (ros2 param set /bag_player paused false to play)")
    ap.add_argument("--delay", type=float, default=0.0, help="wait this long before playing, s")
    ap.add_argument("--wait-subscribers", type=float, default=0.0, metavar="S",
                    help="wait up to S s for a subscriber on every camera / audio topic")
    ap.add_argument("--camera-qos", choices=("sensor_data", "reliable"), default="sensor_data")
    ap.add_argument("--linger", type=float, default=3.0, metavar="S",
                    help="stay up S s after the end (latched done, advancing /clock)")
    return ap


def player_args(args: argparse.Namespace) -> list[str]:
    """ROS parameter arguments for the player from the parsed command line."""
    p = {"rate": repr(float(args.rate)), "loop": str(args.loop).lower(),
         "publish_clock": str(args.clock).lower(),
         "clock_frequency": repr(float(args.clock_frequency)),
         "paused": str(args.start_paused).lower(), "start_delay_s": repr(float(args.delay)),
         "wait_for_subscribers_s": repr(float(args.wait_subscribers)),
         "camera_qos": args.camera_qos}
    out = ["--ros-args"]
    for k, v in p.items():
        out += ["-p", f"{k}:={v}"]
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point: ``python -m avemo_ros.ros.bag_player BAG... [options] [--ros-args ...]``."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    ros_args = []
    if "--ros-args" in argv:
        i = argv.index("--ros-args")
        argv, ros_args = argv[:i], argv[i:]
    args = build_parser().parse_args(argv)
    if not (math.isfinite(args.rate) and args.rate > 0):
        print(f"--rate must be > 0, got {args.rate}", file=sys.stderr)
        return 2
    cli = player_args(args) + ros_args[1:]
    try:
        with ros_context():
            try:
                node = BagPlayer(bag_paths=[str(b) for b in args.bags], topics=args.topics,
                                 cli_args=cli)
            except (BagPlayerError, ValueError) as exc:
                rclpy.logging.get_logger("bag_player").fatal(str(exc))
                return 1
            route_python_logging(node)
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            try:
                while rclpy.ok() and not node.finished:
                    executor.spin_once(timeout_sec=0.1)
                # keep done (and /clock) available a moment for late subscribers and slow nodes
                deadline = time.monotonic() + args.linger
                while rclpy.ok() and time.monotonic() < deadline:
                    executor.spin_once(timeout_sec=0.1)
            finally:
                executor.shutdown()
                node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
