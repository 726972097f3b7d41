"""An audio stream resampled once, chunk by chunk, as it arrives (not again for every window).

:class:`StreamResampler` gives what ``scipy.signal.resample_poly`` gives for the whole
stream (the same filter): each chunk is resampled with the samples before it as context;
the outputs within the filter's reach of the newest sample lack the future and are
corrected in place (in the array handed out for the previous chunk) when the next chunk
comes. Windows overlap, so resampling per window did the same work ``window / hop`` times.
"""
from __future__ import annotations

from math import gcd
from typing import Optional

import numpy as np
from scipy.signal import firwin, resample_poly


class StreamResampler:
    """Mono float32 audio at ``rate_in`` -> ``rate_out``, one contiguous stream."""

    def __init__(self, rate_in: int, rate_out: int):
        g = gcd(int(rate_in), int(rate_out))
        self.rate_in, self.rate_out = int(rate_in), int(rate_out)
        self.up, self.down = self.rate_out // g, self.rate_in // g
        half_len = 10 * max(self.up, self.down)  # resample_poly's own filter
        self._h = firwin(2 * half_len + 1, 1.0 / max(self.up, self.down),
                         window=("kaiser", 5.0)).astype(np.float32)
        self._reach = -(-half_len // self.up) + 1  # input samples the filter spans each side
        self._keep = 2 * self._reach + self.down
        self.reset()

    def reset(self) -> None:
        """Start a new stream (after a gap, a restart, a late chunk)."""
        self._hist = np.zeros(0, np.float32)
        self._g = 0  # input samples so far
        self._prev: Optional[np.ndarray] = None  # outputs handed out for the last chunk
        self._prev_k0 = 0

    @property
    def samples_in(self) -> int:
        """Input samples of this stream so far."""
        return self._g

    def process(self, x: np.ndarray) -> tuple[int, np.ndarray]:
        """(index of the first output in the stream, the outputs of this chunk's span)."""
        x = np.asarray(x, np.float32).reshape(-1)
        g, n, up, down = self._g, x.size, self.up, self.down
        c = min(self._hist.size, 2 * self._reach)
        c += (g - c) % down  # the segment starts on the output grid: (g - c) % down == 0
        a = g - c
        ka = a * up // down
        seg = np.concatenate([self._hist[self._hist.size - c:], x]) if c else x
        y_seg = resample_poly(seg, up, down, window=self._h).astype(np.float32)
        k0, k1 = -(-g * up // down), -(-(g + n) * up // down)
        if self._prev is not None:  # the last chunk's newest outputs, now with their future
            lo = max(self._prev_k0, ka + (-(-self._reach * up // down) if a else 0))
            if lo < k0:
                self._prev[lo - self._prev_k0:k0 - self._prev_k0] = y_seg[lo - ka:k0 - ka]
        y = y_seg[k0 - ka:k1 - ka].copy()
        self._hist = np.concatenate([self._hist, x])[-self._keep:]
        self._g = g + n
        self._prev, self._prev_k0 = y, k0
        return k0, y


class RateConverter:
    """Chunks of one microphone -> chunks at ``rate`` (None: kept at theirs), resampled
    once each, as one continuous stream while they follow each other (within 2 ms)."""

    def __init__(self, rate: Optional[int] = None):
        self.rate = rate
        self.reset()

    def reset(self) -> None:
        """Forget the stream (a restart)."""
        self._resampler: Optional[StreamResampler] = None
        self._start_ns = 0  # stamp of the resampler's first sample

    def convert(self, stamp_ns: int, mono: np.ndarray, rate: int, in_order: bool
                ) -> tuple[int, np.ndarray, int]:
        """(stamp, samples, their rate) of one chunk; ``in_order``: it follows the last."""
        target = self.rate or rate
        if target == rate:
            self._resampler = None
            return stamp_ns, mono, rate
        r = self._resampler
        if r is None or r.rate_in != rate or not in_order or abs(
                stamp_ns - (self._start_ns + r.samples_in * 1_000_000_000 // rate)) > 2_000_000:
            r = self._resampler = StreamResampler(rate, target)
            self._start_ns = stamp_ns
        k0, y = r.process(mono)
        return self._start_ns + k0 * 1_000_000_000 // target, y, target
