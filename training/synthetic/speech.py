"""Speech timing: the two statements' syllables, their timing in a clip, the articulation
envelope and vowel openness over time (shared by voice and face)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


# Relative syllable durations, stresses and vowel openness of the two RAVDESS statements:
# 01 "Kids are talking by the door", 02 "Dogs are sitting by the door".
_STATEMENTS = {
    1: (np.array([1.0, 0.7, 1.3, 0.8, 0.9, 0.6, 1.6]),
        np.array([0.9, 0.6, 1.0, 0.7, 0.8, 0.6, 1.0]),
        np.array([0.2, 0.8, 1.0, 0.3, 0.9, 0.4, 0.7])),
    2: (np.array([1.2, 0.7, 1.2, 0.8, 0.9, 0.6, 1.6]),
        np.array([1.0, 0.6, 0.9, 0.7, 0.8, 0.6, 1.0]),
        np.array([0.8, 0.8, 0.2, 0.3, 0.9, 0.4, 0.7])),
}


_ONE_UTTERANCE_S = 4.0


@dataclass(frozen=True)
class _Syllables:
    onsets: np.ndarray  # seconds
    voiced: np.ndarray  # voiced durations, seconds
    stress: np.ndarray
    openness: np.ndarray  # vowel openness 0..1 (formant mix and jaw)
    utt_starts: np.ndarray  # start and end of each utterance, seconds
    utt_ends: np.ndarray

    def progress(self, times: np.ndarray) -> np.ndarray:
        """Position (0..1) of each time within its utterance (for the pitch contour)."""
        idx = np.searchsorted(self.utt_starts, times, side="right") - 1
        idx = np.clip(idx, 0, self.utt_starts.size - 1)
        span = np.maximum(self.utt_ends[idx] - self.utt_starts[idx], 1e-3)
        return np.clip((times - self.utt_starts[idx]) / span, 0.0, 1.0)


def _plan_syllables(rng: np.random.Generator, statement: int, rate: float, start: float,
                    duration_s: float) -> _Syllables:
    """Syllable timing: the statement once (clips up to 4 s, like RAVDESS' ~3.5 s takes),
    repeated after a pause while it fits in longer clips."""
    durations, stress0, openness0 = _STATEMENTS[statement]
    nominal = durations.size / rate
    parts: list[tuple[np.ndarray, ...]] = []
    while True:
        slots = durations / durations.mean() / rate * rng.uniform(0.9, 1.1, durations.size)
        onsets = start + np.concatenate([[0.0], np.cumsum(slots[:-1])])
        voiced = slots * rng.uniform(0.72, 0.82, durations.size)
        stress = stress0 * rng.uniform(0.9, 1.1, durations.size)
        parts.append((onsets, voiced, stress, openness0))
        end = float(onsets[-1] + voiced[-1])
        start = end + 0.7
        if duration_s <= _ONE_UTTERANCE_S or start + 1.1 * nominal > duration_s - 0.2:
            break
        start += rng.uniform(-0.2, 0.2)
    onsets, voiced, stress, openness = (np.concatenate(x) for x in zip(*parts))
    utt_starts = np.array([p[0][0] for p in parts])
    utt_ends = np.array([p[0][-1] + p[1][-1] for p in parts])
    return _Syllables(onsets, voiced, stress, openness, utt_starts, utt_ends)


def _envelope(syl: _Syllables, times: np.ndarray) -> np.ndarray:
    """Articulation envelope (0..~1) at ``times``: one smooth bump per syllable."""
    env = np.zeros(times.shape, np.float64)
    for on, dur, st in zip(syl.onsets, syl.voiced, syl.stress):
        lo, hi = np.searchsorted(times, [on, on + dur])
        if hi <= lo:
            continue
        x = (times[lo:hi] - on) / dur
        env[lo:hi] = np.maximum(env[lo:hi], st * np.sin(np.pi * x) ** 0.8)
    return env


def _openness_track(syl: _Syllables, times: np.ndarray) -> np.ndarray:
    """Per-sample vowel openness: piecewise constant over syllable slots."""
    idx = np.clip(np.searchsorted(syl.onsets, times, side="right") - 1, 0, syl.onsets.size - 1)
    return syl.openness[idx]
