"""What the perception node reports: timing percentiles, kept frames, its DiagnosticStatus."""
from __future__ import annotations

import threading
from collections import deque
from typing import Any, Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from ..health import Health

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


def node_status(name: str, health: Health, previous: dict[str, int], state: str,
                config_error: Optional[str],
                extra: dict[str, Any]) -> tuple[DiagnosticStatus, dict[str, int]]:
    """The node's DiagnosticStatus, and the counters it reports (``previous`` next time).

    Level: ERROR when an error counter grew (or the node is not configured), WARN when a
    warning counter grew or the node falls behind / loses input; the message names why.
    """
    level = health.level(previous)
    counts = health.snapshot()
    behind = {k: counts.get(k, 0) - previous.get(k, 0)
              for k in _BEHIND_COUNTERS if counts.get(k, 0) != previous.get(k, 0)}
    if behind:
        level = max(level, 1)
    if config_error:
        level, message = 2, f"not configured: {config_error}"
    elif behind and level == 1:
        message = "falling behind: " + ", ".join(f"{n} {k}" for k, n in behind.items())
        if "frames_lost" in behind:
            message += (" (camera frames lost in transport: give the camera driver's process "
                        "the profile config/fastdds_large_data.xml, or use "
                        "image_transport:=compressed)")
    elif health.last_problem and level:
        message = health.last_problem
    else:
        message = state
    status = DiagnosticStatus(level=_LEVELS[level], name=name, message=message,
                              hardware_id="avemo_ros")
    kv = {"state": state, **{k: str(v) for k, v in sorted(counts.items())}, **extra}
    status.values = [KeyValue(key=k, value=str(v)) for k, v in kv.items()]
    return status, counts
