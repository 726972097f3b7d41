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
bag's definition matches the installed type. A type that is not installed is logged once
and its topic skipped.

QoS per type: see :mod:`avemo_ros.ros.bag_topics`; parameters and the command line:
:mod:`avemo_ros.ros.bag_player_params`. Timing: :class:`avemo_ros.playback_clock.PlaybackClock`.

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

import math
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.serialization import deserialize_message
from rosgraph_msgs.msg import Clock
from std_msgs.msg import Bool

from ..playback_clock import PlaybackClock
from .bag_topics import (CAMERA_TYPES, CLOCK_QOS, LATCHED_QOS, QOS_BY_KIND, BagPlayerError,
                         PlaylistBag, message_class, open_reader, qos_for_type, scan_bag)
from .compat import add_post_set_parameters_callback, ros_context
from .bag_player_params import PARAMS, build_parser, player_args
from .params import declare, values
from .ros_logging import route_python_logging

__all__ = ["BagPlayer", "BagPlayerError", "LATCHED_QOS", "PARAMS", "QOS_BY_KIND", "main",
           "message_class", "qos_for_type"]

NS = 1_000_000_000



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
        declare(self, PARAMS)
        add_post_set_parameters_callback(self, self._apply_parameters)
        self._cfg = values(self, PARAMS)
        paths = list(bag_paths) if bag_paths else self._cfg["bag_paths"]
        wanted = list(topics) if topics else self._cfg["topics"]
        if not paths:
            raise BagPlayerError("no bag to play: give bag paths (bag_paths parameter)")
        self.bags = [scan_bag(Path(p)) for p in paths]
        # playlist offset (media time) on the monotonic clock
        self.clock = PlaybackClock(self._cfg["rate"], self._cfg["paused"])
        self.loop = bool(self._cfg["loop"])
        self._topic_pubs: dict[str, Any] = {}
        self._types: dict[str, str] = {}
        self._checked: set[str] = set()
        self._skipped: set[str] = set()
        self.published: dict[str, int] = {}
        self.passes = 0
        self._finished = False
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
        return max(bag_start, bag_start + (self.clock.media_ns(now_mono_ns) - base))

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
            if not self._wait_subscribers():
                return
            delay_s = self._cfg["start_delay_s"]
            self.clock.start(delay_ns=int(round(delay_s * NS)))  # waited for in _wait_until
            self._next_tick_ns = time.monotonic_ns()
            self._done_pub.publish(Bool(data=False))
            self.get_logger().info("playback starts" + (f" in {delay_s:g} s" if delay_s else ""))
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

    def _play_bag(self, bag: PlaylistBag, base_ns: int) -> bool:
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

    def _messages(self, bag: PlaylistBag) -> Iterator[tuple[str, int, bytes]]:
        try:
            with open_reader(bag.path) as reader:
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
            wait = self.clock.wait_s(offset_ns, now)
            if wait is not None and wait <= 0.0:
                lag = self.clock.late_by(offset_ns, self.clock.media_ns(now))
                if lag is not None:
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

    def _publish(self, topic: str, raw: bytes, bag: PlaylistBag) -> None:
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
        rclpy.logging.get_logger("bag_player").fatal(f"--rate must be > 0, got {args.rate}")
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
