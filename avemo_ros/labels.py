"""The one label table: each emotion's name, the names other label sets give it, its
REP-155 expression and its valence/arousal.

Every label a bundle may carry is looked up here (:func:`emotion`), under its own name or
an alias (FER2013's ``fear`` is ``fearful``, ``surprise`` is ``surprised``; FER+'s
``happiness`` is ``happy`` ...), so a 7-class FER bundle and an 8-class RAVDESS one
publish the same valence/arousal for the same face, and a bridge to ``hri_msgs`` gets
the REP-155 constant of any of them (:func:`expression`).

REP-155 (ROS4HRI) expressions: the string constants of ``hri_msgs/msg/Expression.msg``
(hri_msgs 2.0.0, the ROS 2 release; the ROS 1 0.9.0 list is the same). Only the ones
this table maps to are named in :data:`REP155`. ``calm`` (RAVDESS) has no constant: it is
mapped to ``neutral`` (a calm face is a relaxed neutral one; REP-155 has no low-arousal
positive expression), and keeps its own valence/arousal, so the difference survives in
those two numbers. IEMOCAP's ``frustrated`` maps to ``annoyed``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np

#: The hri_msgs/msg/Expression constants this table uses: constant name -> its value.
REP155: Mapping[str, str] = {
    "NEUTRAL": "neutral", "ANGRY": "angry", "SAD": "sad", "HAPPY": "happy",
    "SURPRISED": "surprised", "DISGUSTED": "disgusted", "SCARED": "scared",
    "ANNOYED": "annoyed", "EXCITED": "excited",
}


@dataclass(frozen=True)
class Emotion:
    """One row of the label table.

    ``valence`` / ``arousal``: circumplex coordinates in [-1, 1] (after Russell's
    circumplex model; conventional placements, not measured). ``rep155``: the
    hri_msgs/Expression constant name (a key of :data:`REP155`). ``aliases``: names other
    label sets (FER2013, FER+, REP-155 itself) give the same class.
    """

    name: str
    valence: float
    arousal: float
    rep155: str
    aliases: tuple[str, ...] = ()

    @property
    def expression(self) -> str:
        """The REP-155 expression string (the constant's value)."""
        return REP155[self.rep155]


#: The table. Names are what bundles and EmotionEstimate messages carry.
EMOTIONS: tuple[Emotion, ...] = (
    Emotion("neutral", 0.0, 0.0, "NEUTRAL"),
    Emotion("calm", 0.4, -0.6, "NEUTRAL", ("relaxed",)),  # no REP-155 calm: see module doc
    Emotion("happy", 0.8, 0.5, "HAPPY", ("happiness", "joy")),
    Emotion("sad", -0.7, -0.4, "SAD", ("sadness",)),
    Emotion("angry", -0.6, 0.8, "ANGRY", ("anger",)),
    Emotion("fearful", -0.6, 0.6, "SCARED", ("fear", "scared", "afraid")),
    Emotion("disgust", -0.7, 0.3, "DISGUSTED", ("disgusted",)),
    Emotion("surprised", 0.3, 0.8, "SURPRISED", ("surprise",)),
    Emotion("excited", 0.7, 0.8, "EXCITED"),
    Emotion("frustrated", -0.5, 0.4, "ANNOYED", ("annoyed",)),
)

_BY_NAME: dict[str, Emotion] = {}
for _e in EMOTIONS:
    for _n in (_e.name, *_e.aliases):
        if _n in _BY_NAME:
            raise RuntimeError(f"label table: {_n!r} names two emotions")
        _BY_NAME[_n] = _e

#: RAVDESS emotion codes (third field of the file name) and their labels.
RAVDESS_CODES: Mapping[int, str] = {
    1: "neutral", 2: "calm", 3: "happy", 4: "sad",
    5: "angry", 6: "fearful", 7: "disgust", 8: "surprised",
}
RAVDESS_LABELS: tuple[str, ...] = tuple(RAVDESS_CODES[k] for k in sorted(RAVDESS_CODES))
#: FER2013's classes in the fer network's output order, as fer names them ...
FER2013_NAMES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise",
                                  "neutral")

#: Circumplex coordinates (valence, arousal) by label name (the table's, names only).
CIRCUMPLEX: Mapping[str, tuple[float, float]] = {e.name: (e.valence, e.arousal)
                                                 for e in EMOTIONS}


def emotion(label: str) -> Optional[Emotion]:
    """The table's row for a label (its name or an alias, any case), or None."""
    return _BY_NAME.get(str(label).strip().lower())


def canonical(label: str) -> str:
    """The table's name for a label (``fear`` -> ``fearful``); unknown labels unchanged."""
    e = emotion(label)
    return e.name if e is not None else label


def canonical_labels(labels: Sequence[str]) -> tuple[str, ...]:
    """:func:`canonical` of each label; ValueError when two labels are one emotion."""
    out = tuple(canonical(label) for label in labels)
    if len(set(out)) != len(out):
        raise ValueError(f"labels {list(labels)} name one emotion twice")
    return out


#: ... and in this table's names (the FER bundle's labels).
FER2013_LABELS: tuple[str, ...] = canonical_labels(FER2013_NAMES)


def expression(label: str) -> str:
    """The REP-155 (hri_msgs/Expression) string of a label; "" for a label not in the table."""
    e = emotion(label)
    return e.expression if e is not None else ""


def valence_arousal(labels: Sequence[str], probabilities: np.ndarray) -> tuple[float, float]:
    """Expected (valence, arousal) of a label distribution; labels not in the table count
    as (0, 0)."""
    p = np.asarray(probabilities, dtype=np.float64)
    rows = [emotion(lbl) for lbl in labels]
    coords = np.array([(e.valence, e.arousal) if e is not None else (0.0, 0.0) for e in rows],
                      dtype=np.float64).reshape(-1, 2)
    if p.shape != (len(rows),):
        raise ValueError(f"{p.shape} probabilities for {len(rows)} labels")
    total = p.sum()
    if total <= 0 or not np.isfinite(total):
        return 0.0, 0.0
    v, a = (p[:, None] * coords).sum(axis=0) / total
    return float(np.clip(v, -1, 1)), float(np.clip(a, -1, 1))
