"""Health counters of a running pipeline (ROS-free); the node turns them into /diagnostics."""
from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

#: Counters that mean input or processing went wrong (they raise the diagnostics level).
ERROR_COUNTERS = (
    "image_unsupported", "image_invalid", "audio_unsupported", "audio_invalid",
    "audio_non_finite", "timestamps_backwards", "inference_errors", "audio_rate_changes",
)
WARN_COUNTERS = ("stream_gaps", "stale_dropped", "windows_skipped", "windows_without_face",
                 "audio_without_header", "windows_dropped", "audio_lost", "frames_lost",
                 "audio_info_mismatch", "audio_type_mismatch", "audio_qos_incompatible",
                 "audio_clock_mapped")


@dataclass
class Health:
    """Thread-safe event counters plus the last problem seen, with its counter name."""

    counts: Counter = field(default_factory=Counter)
    last_problem: Optional[str] = None
    last_problem_counter: Optional[str] = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, name: str, n: int = 1, problem: Optional[str] = None) -> None:
        with self._lock:
            self.counts[name] += n
            if problem:
                self.last_problem, self.last_problem_counter = problem, name

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

    def level(self, previous: dict[str, int]) -> int:
        """0 OK, 1 WARN, 2 ERROR from what changed since ``previous``."""
        now = self.snapshot()
        changed = {k for k, v in now.items() if v != previous.get(k, 0)}
        if changed & set(ERROR_COUNTERS):
            return 2
        if changed & set(WARN_COUNTERS):
            return 1
        return 0
