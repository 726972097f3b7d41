"""``eval_recorder`` node: score a live replay's EmotionEstimates against the bags' ground truth.

    python -m avemo_ros.ros.eval_recorder --bag BAG... --out DIR [--topic emotion]
        [--done-topic /bag_player/done] [--grace 3.0] [--ros-args ...]

Each ``EmotionEstimate`` on ``emotion`` becomes an :class:`avemo_ros.evaluation.WindowRecord`:
the window is attributed to the bag whose stamp span holds its end, its truth is the
ground-truth label covering most of the window (``avemo_ros.bags.truth_for_window``), and
its latency is the arrival time minus the window end on the node clock (the sim clock
under ``use_sim_time``, so replay with ``bag_player --clock``). When the player's ``done``
(``std_msgs/Bool`` true, latched) arrives, the node waits until no estimate came for
``grace_s`` seconds of wall time (at most ``max_wait_s``) and writes the report with
``avemo_ros.evaluation.write_report`` (report.json, windows.csv, confusion.png,
latency.png) into ``out_dir``; on shutdown before that it writes what it has.

Bags whose stamp spans overlap cannot be told apart by stamp: windows then go to the
first such bag at or after the last one attributed (the player plays them in order).
"""
from __future__ import annotations

import argparse
import logging
import math
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import rclpy
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Bool

from ..bags import BagError, bag_info, truth_for_window
from ..evaluation import WindowRecord, write_report
from .params import STRING_ARRAY, ParamSpec, declare, values
from .compat import ros_context
from .ros_logging import route_python_logging

__all__ = ["EvalRecorder", "EvalRecorderError", "bag_source", "main"]

_LOG = logging.getLogger(__name__)
NS = 1_000_000_000
_IMPLAUSIBLE_LATENCY_S = 3600.0  # a node clock this far from the stamps is another clock

PARAMS = (
    ParamSpec("bag_paths", None, "Bags being replayed (their ground truth and stamp spans).",
              read_only=True, kind=STRING_ARRAY),
    ParamSpec("out_dir", "", "Directory for report.json, windows.csv, confusion.png, latency.png "
              "('' = keep the records in memory only).", read_only=True),
    ParamSpec("done_topic", "/bag_player/done", "Latched std_msgs/Bool of the player: true ends "
              "the recording after grace_s ('' = record until shutdown).", read_only=True),
    ParamSpec("grace_s", 3.0, "After done, report once no estimate arrived for this many "
              "wall-clock seconds (a node still catching up keeps the recording open).",
              range=(0.0, 600.0)),
    ParamSpec("max_wait_s", 60.0, "After done, report after this many wall-clock seconds at the "
              "latest.", range=(0.0, 3600.0)),
)
DONE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)


class EvalRecorderError(ValueError):
    """The recorder cannot start (no bag, unreadable bag)."""


def bag_source(path: str | Path) -> str:
    """The ``source`` of a bag's windows in records: the bag's file or directory name."""
    return Path(path).name


class _BagTruth:
    def __init__(self, path: str):
        try:
            info = bag_info(path)
        except BagError as exc:
            raise EvalRecorderError(str(exc)) from exc
        self.path = path
        self.source = bag_source(path)
        self.start_ns, self.end_ns = info.start_ns, info.end_ns
        self.segments = list(info.truth)


class EvalRecorder(Node):
    """Records EmotionEstimates as WindowRecords and writes the evaluation report.

    ``bag_paths`` / ``out_dir`` given here take precedence over the parameters.
    ``now_ns``: optional clock for arrival times (ns, same clock as the stamps) instead of
    the node clock, e.g. the player's bag time in a replay without ``use_sim_time``.
    ``report_extra``: called when the report is written; its dict goes into the report's
    ``extra`` (e.g. replay settings).
    """

    def __init__(self, node_name: str = "eval_recorder", *,
                 bag_paths: Optional[Sequence[str]] = None,
                 out_dir: Optional[str] = None, now_ns: Optional[Callable[[], int]] = None,
                 report_extra: Optional[Callable[[], dict]] = None, **kwargs: Any):
        super().__init__(node_name, **kwargs)
        declare(self, PARAMS)
        self._cfg = values(self, PARAMS)
        paths = list(bag_paths) if bag_paths else self._cfg["bag_paths"]
        if not paths:
            self.destroy_node()
            raise EvalRecorderError("no bag given: the ground truth comes from the replayed bags")
        try:
            self.bags = [_BagTruth(str(p)) for p in paths]
        except EvalRecorderError:
            self.destroy_node()
            raise
        for b in self.bags:
            if not b.segments:
                self.get_logger().warning(
                    f"{b.path} holds no ground truth: its windows are not scored")
        self.out_dir = out_dir if out_dir is not None else self._cfg["out_dir"]
        self._now_ns = now_ns
        self._report_extra = report_extra
        self._lock = threading.Lock()
        self._records: list[WindowRecord] = []
        self._reported_latency: list[float] = []
        self.labels: list[str] = []
        self.model_id = ""
        self._current_bag = 0
        self._warned: set[str] = set()
        self.report: Optional[dict] = None
        self._done_at: Optional[float] = None
        self._last_arrival = 0.0  # monotonic arrival of the last estimate
        self._finished = threading.Event()
        from avemo_ros.msg import EmotionEstimate

        self.create_subscription(EmotionEstimate, "emotion", self._on_estimate,
                                 QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
        if self._cfg["done_topic"]:
            self.create_subscription(Bool, self._cfg["done_topic"], self._on_done, DONE_QOS)
        # wall-clock timer: the sim clock stops when the player is done
        self._timer = self.create_timer(0.1, self._check_done,
                                        clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(
            f"recording estimates for {len(self.bags)} bag(s): "
            + ", ".join(f"{b.source} ({len(b.segments)} truth segments)" for b in self.bags))

    # ------------------------------------------------------------------ callbacks

    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.get_logger().warning(text)

    def _arrival_ns(self) -> int:
        return self._now_ns() if self._now_ns is not None else self.get_clock().now().nanoseconds

    def _bag_for(self, end_ns: int) -> Optional[_BagTruth]:
        n = len(self.bags)
        holding = [i for i, b in enumerate(self.bags)
                   if b.start_ns <= end_ns <= b.end_ns + NS // 10]
        if not holding:
            return None
        if len(holding) > 1:
            self._warn_once("overlap", f"bags {[self.bags[i].source for i in holding]} overlap in "
                            "stamps: windows go to them in playing order")
            later = [i for i in holding if i >= self._current_bag]
            index = later[0] if later else holding[0]
        else:
            index = holding[0]
        self._current_bag = index % n
        return self.bags[index]

    def _on_estimate(self, msg) -> None:
        arrival = self._arrival_ns()
        self._last_arrival = time.monotonic()
        end = msg.header.stamp.sec * NS + msg.header.stamp.nanosec
        start = msg.window_start.sec * NS + msg.window_start.nanosec
        latency = (arrival - end) / NS
        if abs(latency) > _IMPLAUSIBLE_LATENCY_S:
            self._warn_once("clock", f"arrival is {latency:.0f} s after the window end: the node "
                            "clock is not the bag's clock; run with use_sim_time and the player's "
                            "/clock for latencies (left out)")
            latency = None
        labels = list(msg.labels)
        with self._lock:
            if not self.labels:
                self.labels, self.model_id = labels, msg.model_id
            elif labels != self.labels:
                self._warn_once("labels", f"label set changed from {self.labels} to {labels}: "
                                "probabilities of later windows are left out")
            bag = self._bag_for(end)
            if bag is None:
                self._warn_once(f"outside{end}", f"window ending {end / NS:.3f} s lies in no "
                                "replayed bag: recorded without truth")
            self._records.append(WindowRecord(
                source=bag.source if bag else "", start_ns=start, end_ns=end,
                truth=truth_for_window(bag.segments, start, end) if bag else None,
                label=msg.label, confidence=float(msg.confidence),
                probabilities=([float(p) for p in msg.probabilities] if labels == self.labels
                               else []),
                modalities=int(msg.modalities), latency_s=latency))
            self._reported_latency.append(float(msg.latency))

    def _on_done(self, msg) -> None:
        if msg.data and self._done_at is None:
            self._done_at = time.monotonic()
            self.get_logger().info(f"player done: writing the report once no estimate came for "
                                   f"{self._cfg['grace_s']:g} s")

    def _check_done(self) -> None:
        if self._done_at is None or self._finished.is_set():
            return
        now = time.monotonic()
        quiet_since = max(self._done_at, self._last_arrival)
        if (now - quiet_since >= self.get_parameter("grace_s").value
                or now - self._done_at >= self.get_parameter("max_wait_s").value):
            self.finish()

    # ------------------------------------------------------------------ results

    def _log(self, level: int, text: str) -> None:
        """The node's logger while its context lives, else Python logging (after shutdown)."""
        if self.context.ok():
            (self.get_logger().error if level >= logging.ERROR else self.get_logger().info)(text)
        else:
            _LOG.log(level, text)

    @property
    def records(self) -> list[WindowRecord]:
        """A copy of the records so far, in arrival order."""
        with self._lock:
            return list(self._records)

    @property
    def finished(self) -> bool:
        """True once the report was written (or the records were closed without one)."""
        return self._finished.is_set()

    def wait_finished(self, timeout: float) -> bool:
        """Block until :meth:`finish` ran (done + grace); True when it did."""
        return self._finished.wait(timeout)

    def finish(self, extra: Optional[dict] = None) -> Optional[dict]:
        """Write the report (once) and return it; None without ``out_dir`` or estimates."""
        with self._lock:
            if self._finished.is_set():
                return self.report
            records, labels = list(self._records), list(self.labels)
            reported = list(self._reported_latency)
            self._finished.set()
        if not records:
            self._log(logging.ERROR, "no estimate arrived: no report")
            return None
        info = {"mode": "live", "bags": [b.path for b in self.bags], "model_id": self.model_id,
                "estimates": len(records),
                "use_sim_time": bool(self.get_parameter("use_sim_time").value),
                "node_reported_latency_s_median": sorted(reported)[len(reported) // 2]
                if reported and all(map(math.isfinite, reported)) else None,
                **(self._report_extra() if self._report_extra else {}), **(extra or {})}
        if self.out_dir:
            self.report = write_report(self.out_dir, records, labels, extra=info)
            self._log(logging.INFO, f"report in {self.out_dir}: {len(records)} windows, accuracy "
                      f"{self.report['metrics']['accuracy']:.3f}, latency p50 "
                      f"{_ms(self.report['latency_s']['p50'])}")
        else:
            self.report = None
        return self.report


def _ms(seconds: Optional[float]) -> str:
    return "n/a" if seconds is None else f"{seconds * 1e3:.1f} ms"


def summary_line(report: dict) -> str:
    """One line: windows, accuracy, macro-F1, latency p50/p95."""
    m, lat = report["metrics"], report["latency_s"]
    return (f"{report['windows']} windows ({report['windows_scored']} scored): accuracy "
            f"{m['accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f}; latency p50 {_ms(lat['p50'])}, "
            f"p95 {_ms(lat['p95'])}")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description="record EmotionEstimates of a live replay and report")
    ap.add_argument("--bag", nargs="+", required=True, type=Path, help="the replayed bags")
    ap.add_argument("--out", required=True, type=Path, help="report directory")
    ap.add_argument("--topic", default="emotion", help="EmotionEstimate topic")
    ap.add_argument("--done-topic", default="/bag_player/done",
                    help="player's done topic ('' none)")
    ap.add_argument("--grace", type=float, default=3.0,
                    help="after done, report once no estimate came for this many seconds")
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point: ``python -m avemo_ros.ros.eval_recorder --bag BAG... --out DIR``."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    ros_args: list[str] = []
    if "--ros-args" in argv:
        i = argv.index("--ros-args")
        argv, ros_args = argv[:i], argv[i + 1:]
    args = build_parser().parse_args(argv)
    cli = ["--ros-args", "-p", f"done_topic:={args.done_topic or chr(34) * 2}",
           "-p", f"grace_s:={float(args.grace)!r}", "-r", f"emotion:={args.topic}", *ros_args]
    node = None
    try:
        with ros_context():
            try:
                node = EvalRecorder(bag_paths=[str(b) for b in args.bag], out_dir=str(args.out),
                                    cli_args=cli)
            except (EvalRecorderError, ValueError) as exc:
                rclpy.logging.get_logger("eval_recorder").fatal(str(exc))
                return 1
            route_python_logging(node)
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            try:
                while rclpy.ok() and not node.finished:
                    executor.spin_once(timeout_sec=0.1)
            finally:
                executor.shutdown()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    if node is None:
        return 1
    report = node.finish()  # shutdown before done: report what arrived
    if report is None:
        return 1
    print(summary_line(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
