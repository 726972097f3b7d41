"""The playback clock of the players: media time as a function of a clock's time (no ROS).

``media(now) = anchor_media + (now - anchor_clock) * rate`` while playing. Changing the
rate or pausing re-anchors at the current media time, so the media position stays
continuous; while paused media time stands still. :meth:`PlaybackClock.start` anchors
media time 0 at ``now + delay`` (media time is negative during a start delay).
:meth:`PlaybackClock.late_by` says when publishing has fallen behind schedule, at most
once per ``warn_every_s``. Used by ``file_source`` (on the node clock, sim time included)
and ``bag_player`` (on the monotonic clock). Thread-safe.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Optional

__all__ = ["LAG_WARN_NS", "PlaybackClock"]

NS = 1_000_000_000
LAG_WARN_NS = 200_000_000  # publishing this far behind schedule is worth a warning


class PlaybackClock:
    """Media time (ns) on a clock given by ``now`` (a callable returning ns; default monotonic).

    ``rate`` must be > 0. Methods take an optional ``now_ns`` so that one reading of the
    clock can serve several calls.
    """

    def __init__(self, rate: float = 1.0, paused: bool = False, *,
                 now: Callable[[], int] = time.monotonic_ns, lag_warn_ns: int = LAG_WARN_NS,
                 warn_every_s: float = 2.0) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self._now = now
        self._lock = threading.Lock()
        self._rate = float(rate)
        self._paused = bool(paused)
        self._anchor_clock_ns: Optional[int] = None  # None: not started
        self._anchor_media_ns = 0
        self.lag_warn_ns = int(lag_warn_ns)
        self.warn_every_s = float(warn_every_s)
        self._warned_at: Optional[float] = None  # time.monotonic() of the last lag warning

    def now_ns(self) -> int:
        """The clock's time now."""
        return int(self._now())

    def start(self, now_ns: Optional[int] = None, delay_ns: int = 0) -> int:
        """Start at media time ``-delay_ns * rate``: media time 0 comes ``delay_ns`` of clock
        time later (later still for time spent paused). Returns that clock time."""
        with self._lock:
            now = self.now_ns() if now_ns is None else int(now_ns)
            self._anchor_clock_ns = now
            self._anchor_media_ns = -int(round(int(delay_ns) * self._rate))
            return now + int(delay_ns)

    @property
    def started(self) -> bool:
        """True once :meth:`start` was called."""
        return self._anchor_clock_ns is not None

    @property
    def rate(self) -> float:
        """Media seconds per clock second."""
        return self._rate

    @property
    def paused(self) -> bool:
        """True while media time stands still."""
        return self._paused

    def _media_locked(self, now_ns: int) -> int:
        if self._anchor_clock_ns is None:
            return 0
        if self._paused:
            return self._anchor_media_ns
        return self._anchor_media_ns + int((now_ns - self._anchor_clock_ns) * self._rate)

    def media_ns(self, now_ns: Optional[int] = None) -> int:
        """Media time at clock time ``now_ns`` (default: now); 0 before the start."""
        with self._lock:
            return self._media_locked(self.now_ns() if now_ns is None else int(now_ns))

    def wait_s(self, media_ns: int, now_ns: Optional[int] = None) -> Optional[float]:
        """Clock seconds until media time ``media_ns`` (0: past; None: paused or not started)."""
        with self._lock:
            if self._paused or self._anchor_clock_ns is None:
                return None
            now = self.now_ns() if now_ns is None else int(now_ns)
            return max(0.0, (media_ns - self._media_locked(now)) / self._rate / NS)

    def shift(self, delta_ns: int) -> None:
        """Move media time by ``delta_ns`` (a loop restart moves it back by one pass)."""
        with self._lock:
            self._anchor_media_ns += int(delta_ns)

    def set_rate(self, rate: float, now_ns: Optional[int] = None) -> None:
        """Change the rate from now on; the media position stays where it is."""
        if not rate > 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self._reanchor(now_ns, rate=float(rate))

    def set_paused(self, paused: bool, now_ns: Optional[int] = None) -> None:
        """Hold (True) or resume (False) media time."""
        self._reanchor(now_ns, paused=bool(paused))

    def _reanchor(self, now_ns: Optional[int], rate: Optional[float] = None,
                  paused: Optional[bool] = None) -> None:
        with self._lock:
            now = self.now_ns() if now_ns is None else int(now_ns)
            if self._anchor_clock_ns is not None:
                self._anchor_media_ns = self._media_locked(now)
                self._anchor_clock_ns = now
            if rate is not None:
                self._rate = rate
            if paused is not None:
                self._paused = paused

    def late_by(self, due_media_ns: int, media_ns: int) -> Optional[int]:
        """How far (ns) publishing at ``media_ns`` is behind ``due_media_ns``, when that is more
        than ``lag_warn_ns`` and no such answer was given in the last ``warn_every_s``
        (wall time); else None."""
        lag = int(media_ns) - int(due_media_ns)
        if lag <= self.lag_warn_ns:
            return None
        now = time.monotonic()
        with self._lock:
            if self._warned_at is not None and now - self._warned_at < self.warn_every_s:
                return None
            self._warned_at = now
        return lag
