"""Health counters of a running pipeline (ROS-free); the node turns them into /diagnostics.

Counter names are :class:`~avemo_ros.input_problems.Problem` values (each with its level)
or plain event counters (``frames_received``, ``windows_published``, ...: level OK).
"""
from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

from .input_problems import Problem


@dataclass
class Health:
    """Thread-safe event counters plus the last text seen per problem counter."""

    counts: Counter = field(default_factory=Counter)
    last_text: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, name: str, n: int = 1, problem: Optional[str] = None) -> None:
        """Add ``n`` to counter ``name``; ``problem``: the text that describes this one."""
        with self._lock:
            self.counts[name] += n
            if problem:
                self.last_text[name] = problem

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

    def grown(self, previous: dict[str, int]) -> dict[Problem, int]:
        """Problems whose counters grew since ``previous``, with by how much."""
        now = self.snapshot()
        out = {}
        for key, value in now.items():
            problem = Problem.by_key(key)
            if problem is not None and value != previous.get(key, 0):
                out[problem] = value - previous.get(key, 0)
        return out

    def level(self, previous: dict[str, int]) -> int:
        """0 OK, 1 WARN, 2 ERROR: the highest level of the problems grown since ``previous``."""
        return max((p.level for p in self.grown(previous)), default=0)

    def describe(self, previous: dict[str, int]) -> tuple[int, str]:
        """(level, message): the message names every problem grown at that level, its
        count and its last text, e.g. ``frames_lost +3 (camera frames lost ...): ...``."""
        grown = self.grown(previous)
        level = max((p.level for p in grown), default=0)
        if not level:
            return 0, ""
        with self._lock:
            parts = [f"{p.value} +{n} ({p.cause}): {self.last_text.get(p.value, '')}".rstrip(": ")
                     for p, n in sorted(grown.items(), key=lambda kv: kv[0].value)
                     if p.level == level]
        return level, "; ".join(parts)
