"""Label sets and the valence/arousal coordinates of each emotion label."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

#: RAVDESS emotion codes (third field of the file name) and their labels.
RAVDESS_CODES: Mapping[int, str] = {
    1: "neutral", 2: "calm", 3: "happy", 4: "sad",
    5: "angry", 6: "fearful", 7: "disgust", 8: "surprised",
}
RAVDESS_LABELS: tuple[str, ...] = tuple(RAVDESS_CODES[k] for k in sorted(RAVDESS_CODES))

#: Circumplex coordinates (valence, arousal), each in [-1, 1], of common emotion labels
#: (after Russell's circumplex model; values are conventional placements, not measured).
CIRCUMPLEX: Mapping[str, tuple[float, float]] = {
    "neutral": (0.0, 0.0),
    "calm": (0.4, -0.6),
    "happy": (0.8, 0.5),
    "sad": (-0.7, -0.4),
    "angry": (-0.6, 0.8),
    "fearful": (-0.6, 0.6),
    "disgust": (-0.7, 0.3),
    "surprised": (0.3, 0.8),
    "excited": (0.7, 0.8),
    "frustrated": (-0.5, 0.4),
}


def valence_arousal(labels: Sequence[str], probabilities: np.ndarray) -> tuple[float, float]:
    """Expected (valence, arousal) of a label distribution; unknown labels count as (0, 0)."""
    p = np.asarray(probabilities, dtype=np.float64)
    coords = np.array([CIRCUMPLEX.get(lbl, (0.0, 0.0)) for lbl in labels], dtype=np.float64)
    total = p.sum()
    if total <= 0 or not np.isfinite(total):
        return 0.0, 0.0
    v, a = (p[:, None] * coords).sum(axis=0) / total
    return float(np.clip(v, -1, 1)), float(np.clip(a, -1, 1))
