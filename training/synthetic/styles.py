"""Emotion styles: the labels, each emotion's voice and face style, which emotions share a
style, and how intensity exaggerates a style."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace


#: RAVDESS emotion labels in code order (code = index + 1).
LABELS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")

#: Deviation scale of intensity 01 (normal) and 02 (strong).
INTENSITY_SCALE = {1: 1.0, 2: 1.5}


@dataclass(frozen=True)
class VoiceStyle:
    """Emotion-dependent voice parameters (deviations scale with intensity)."""

    pitch_ratio: float  # mean f0 relative to the actor's base pitch
    contour: float  # f0 change over the utterance, fraction (+ rising, - falling)
    tremolo_depth: float  # 6 Hz f0/amplitude modulation depth, fraction
    gain_db: float  # speech level relative to the neutral style
    brightness: float  # harmonic decay ratio of the source (higher: brighter)
    roughness: float  # subharmonic (period-doubling) modulation depth
    jitter: float  # random f0 perturbation, fraction
    breath: float  # aspiration noise relative to the voiced source


@dataclass(frozen=True)
class FaceStyle:
    """Emotion-dependent face parameters (deviations scale with intensity)."""

    mouth_curve: float  # + corners up (smile), - corners down (frown)
    mouth_open: float  # resting jaw opening, fraction of the maximum
    mouth_width: float  # relative to the actor's mouth width
    brow_raise: float  # + raised, - lowered
    brow_tilt: float  # + inner ends up (worried), - inner ends down (scowl)
    eye_open: float  # relative eye aperture


_VOICES = {
    "level": VoiceStyle(1.0, 0.0, 0.0, 0.0, 0.70, 0.0, 0.004, 0.06),
    "bright": VoiceStyle(1.5, 0.30, 0.0, 4.0, 0.78, 0.0, 0.006, 0.04),
    "harsh": VoiceStyle(1.2, -0.25, 0.0, 8.0, 0.88, 0.45, 0.020, 0.03),
    "low": VoiceStyle(0.8, -0.18, 0.0, -8.0, 0.58, 0.0, 0.004, 0.30),
    "shaky": VoiceStyle(1.7, 0.0, 0.07, 2.0, 0.74, 0.0, 0.010, 0.12),
}
_FACES = {
    "rest": FaceStyle(0.0, 0.05, 1.0, 0.0, 0.0, 1.0),
    "drowsy": FaceStyle(0.0, 0.05, 0.75, 0.35, 1.2, 0.3),
    "open": FaceStyle(0.0, 0.65, 0.8, 0.9, 0.0, 1.4),
    "smile": FaceStyle(1.2, 0.15, 1.25, 0.0, 0.0, 0.6),
    "scowl": FaceStyle(-1.1, 0.05, 1.0, -0.8, -1.1, 0.75),
}
#: Syllables per second of the two tempo levels (shared by both modalities).
_TEMPI = {"slow": 3.0, "fast": 4.8}

_VOICE_OF = {"neutral": "level", "calm": "level", "happy": "bright", "surprised": "bright",
             "angry": "harsh", "disgust": "harsh", "sad": "low", "fearful": "shaky"}
_FACE_OF = {"neutral": "rest", "sad": "rest", "calm": "drowsy", "fearful": "drowsy",
            "surprised": "open", "angry": "open", "happy": "smile", "disgust": "scowl"}
_TEMPO_OF = {"neutral": "slow", "calm": "slow", "sad": "slow", "fearful": "slow",
             "happy": "fast", "surprised": "fast", "angry": "fast", "disgust": "fast"}


def audio_group(emotion: str) -> str:
    """Name of the voice style of ``emotion`` (emotions sharing it sound alike)."""
    return _VOICE_OF[_check_emotion(emotion)]


def video_group(emotion: str) -> str:
    """Name of the face style of ``emotion`` (emotions sharing it look alike)."""
    return _FACE_OF[_check_emotion(emotion)]


def _check_emotion(emotion: str) -> str:
    if emotion not in _VOICE_OF:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {LABELS}")
    return emotion


def _exaggerate(style, base, scale: float):
    """``base + (style - base) * scale`` field by field."""
    values = {}
    for f in fields(style):
        b = getattr(base, f.name)
        values[f.name] = b + (getattr(style, f.name) - b) * scale
    return replace(style, **values)
