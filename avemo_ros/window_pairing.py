"""The fusion node's pairing: audio and video ModalityWindows matched by window end (no ROS).

Both modality nodes window on the same absolute grid (window ends on multiples of the hop),
so the two halves of a window carry the same end stamp. A window is fused once both halves
are here. A half waits for its partner by the all-in-one node's rule for a late stream
(:class:`~avemo_ros.window.WindowBuffer`): while the partner is alive (heard from within
``grace_s``) and less than one window behind the newest half; not at all once it has sent
a later window (it skipped this one). Then the window goes out with the half it has: that
modality's estimate, flagged by the bitmask, as the all-in-one node does. A partner heard
nothing from for ``partner_timeout_s`` is *silent* (stopped, restarting, unplugged: the
node's diagnostics say so); one never heard counts from the first half of either.
Windows go out in end order; a half arriving after its window went out is late (counted,
dropped). A half from another model is refused: its numbers mean nothing to this
bundle's fusion network.
"""
from __future__ import annotations

from typing import Optional, Sequence

from .modality_estimates import ModalityWindow


class WindowPairer:
    """Pairs ModalityWindows of ``modalities`` by end stamp (see the module doc).

    ``now_s``: monotonic seconds; a partner never heard from counts from ``started_s`` (the
    fusion node's activation) until the first half of either arrives, from then on after.
    """

    def __init__(self, model_id: str, grace_s: float, partner_timeout_s: float,
                 modalities: Sequence[str] = ("audio", "video"), started_s: float = 0.0):
        if grace_s < 0 or partner_timeout_s <= 0:
            raise ValueError("grace_s must be >= 0 and partner_timeout_s > 0")
        self.model_id, self.grace_s, self.timeout_s = model_id, grace_s, partner_timeout_s
        self.modalities = tuple(modalities)
        self._pending: dict[int, dict[str, ModalityWindow]] = {}
        self.last_seen_s: dict[str, float] = {m: started_s for m in self.modalities}
        self.heard: set[str] = set()  # partners heard from at least once
        self._last_out_ns: Optional[int] = None
        self._latest_end_ns: Optional[int] = None  # the newest half's window end

    def add(self, mw: ModalityWindow, now_s: float) -> Optional[str]:
        """Take one half. Returns why it was refused ('model_mismatch', 'late',
        'unexpected_modality'), None when taken."""
        if mw.modality not in self.modalities:
            return "unexpected_modality"
        if mw.model_id != self.model_id:
            return "model_mismatch"
        if not self.heard:  # the stream starts: partners not heard yet count from here
            self.last_seen_s = {m: now_s for m in self.modalities}
        self.last_seen_s[mw.modality] = now_s
        self.heard.add(mw.modality)
        self._latest_end_ns = max(mw.end_ns, self._latest_end_ns or mw.end_ns)
        if self._last_out_ns is not None and mw.end_ns <= self._last_out_ns:
            return "late"
        sides = self._pending.setdefault(mw.end_ns, {})
        sides[mw.modality] = mw
        return None

    def silent_s(self, modality: str, now_s: float) -> Optional[float]:
        """Seconds since ``modality``'s node was last heard, when over the timeout."""
        quiet = now_s - self.last_seen_s[modality]
        return quiet if quiet > self.timeout_s else None

    def silent(self, now_s: float) -> dict[str, float]:
        """The silent partners and how long each has been silent, seconds."""
        out = {m: self.silent_s(m, now_s) for m in self.modalities}
        return {m: s for m, s in out.items() if s is not None}

    def _ready(self, end: int, now_s: float) -> bool:
        sides = self._pending[end]
        window_ns = end - next(iter(sides.values())).start_ns
        for m in self.modalities:
            if m in sides or any(e > end and m in s for e, s in self._pending.items()):
                continue
            alive = now_s - self.last_seen_s[m] < self.grace_s
            if alive and (self._latest_end_ns or end) - end < window_ns:
                return False  # a live partner less than one window behind: wait for it
        return True

    def pop_ready(self, now_s: float) -> list[dict[str, ModalityWindow]]:
        """The windows to fuse now, in end order: each a dict modality -> its half."""
        out = []
        for end in sorted(self._pending):
            if not self._ready(end, now_s):
                break
            out.append(self._pending.pop(end))
            self._last_out_ns = end
        return out

    @property
    def waiting(self) -> int:
        """Windows waiting for a partner."""
        return len(self._pending)
