"""What the perception node reports: timing percentiles and its DiagnosticStatus."""
from __future__ import annotations

import threading
from collections import deque
from typing import Any, Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from ..health import Health

#: What a WARN on lost camera frames tells the user to do.
FRAMES_LOST_FIX = (
    "raw images need the large-data Fast DDS profile in the camera driver's process too: "
    "FASTDDS_DEFAULT_PROFILES_FILE (Humble/Jazzy: FASTRTPS_DEFAULT_PROFILES_FILE)"
    "=<share/avemo_ros>/config/fastdds_large_data.xml (the launch file and runner set it for "
    "their processes), or image_transport:=compressed")
_LEVELS = (DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR)
#: Timing figures reported on /diagnostics (p50 / p95 / max over the last windows), ms.
#: critical_path: window complete -> published (audio branch, fusion, publication: the
#: floor of the latency, the video branch being computed before the window ends).
#: complete_to_publish: the input that completed the window arrived -> published.
TIMINGS = ("image_arrival_lag", "audio_arrival_lag", "window_ready_lag", "queue_wait",
           "window_compute", "critical_path", "complete_to_publish", "latency")


def log_to(logger: Any):
    """``log(level, text)`` onto a ROS logger (0 info, 1 warning, 2 error)."""
    def log(level: int, text: str) -> None:  # one call site per severity (rclpy wants it)
        if level >= 2:
            logger.error(text)
        elif level == 1:
            logger.warning(text)
        else:
            logger.info(text)
    return log


class RollingTimes:
    """The last ``n`` values of named durations (thread-safe), summarised as percentiles."""

    def __init__(self, n: int = 1000):
        self._values = {name: deque(maxlen=n) for name in TIMINGS}
        self._lock = threading.Lock()

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self._values[name].append(seconds)

    def add_estimate(self, latency: float, result: Any, critical: float, outcome: Any) -> None:
        """The timings of one published estimate (an EmotionResult of a WindowOutcome),
        seconds; the window's ready lag: its end -> arrival of the input completing it."""
        for name, value in (("latency", latency), ("window_compute", result.inference_time),
                            ("critical_path", critical), ("queue_wait", outcome.ready_lag_s or 0)):
            self.add(name, value)
        if outcome.complete_ns is not None:
            ready_lag = (outcome.complete_ns - result.end_ns) / 1e9
            self.add("window_ready_lag", ready_lag)
            self.add("complete_to_publish", latency - ready_lag)

    def summary(self) -> dict[str, str]:
        """name_ms -> "p50 P p95 Q max M" for every timing with values."""
        out = {}
        with self._lock:
            items = [(k, np.array(v) * 1e3) for k, v in self._values.items() if v]
        for name, ms in items:
            p50, p95 = np.percentile(ms, (50, 95))
            out[f"{name}_ms"] = f"p50 {p50:.1f} p95 {p95:.1f} max {ms.max():.1f}"
        return out


def node_status(name: str, health: Health, previous: dict[str, int], state: str,
                config_error: Optional[str],
                extra: dict[str, Any]) -> tuple[DiagnosticStatus, dict[str, int]]:
    """The node's DiagnosticStatus, and the counters it reports (``previous`` next time).

    Level: the highest level of the problems whose counters grew since ``previous``
    (ERROR when the node is not configured); a WARN or ERROR message names every such
    problem, how many, and its last text.
    """
    level, message = health.describe(previous)
    counts = health.snapshot()
    if config_error:
        level, message = 2, f"not configured: {config_error}"
    elif not level:
        message = state
    status = DiagnosticStatus(level=_LEVELS[level], name=name, message=message,
                              hardware_id="avemo_ros")
    kv = {"state": state, **{k: str(v) for k, v in sorted(counts.items())}, **extra}
    status.values = [KeyValue(key=k, value=str(v)) for k, v in kv.items()]
    return status, counts


def diagnostics_extra(model_id: Optional[str], first_estimate_delay: Optional[float],
                      gauges: dict[str, Any], timings: dict[str, str]) -> dict[str, Any]:
    """The key/values besides the counters: model id, first-estimate delay, the worker's
    gauges, the timing percentiles."""
    extra: dict[str, Any] = {"model_id": model_id} if model_id else {}
    if first_estimate_delay is not None:
        extra["first_estimate_delay_s"] = f"{first_estimate_delay:.3f}"
    return {**extra, **gauges, **timings}
