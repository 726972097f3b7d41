"""Deterministic synthetic audio-visual emotion clips in the RAVDESS layout and naming.

Each clip is a shaded, Haar-detectable face that "speaks" a seven-syllable statement:
a harmonic voice gated by a syllable envelope, whose level, pitch contour, tremolo and
voice quality depend on the emotion, and a face whose mouth, brows and eyes depend on
the emotion while the jaw follows the same syllable envelope.

The two modalities are built to be complementary. Emotions share an audio style within
{neutral, calm}, {happy, surprised}, {angry, disgust} (sad, fearful apart) and a face
style within {neutral, sad}, {calm, fearful}, {surprised, angry} (happy, disgust apart),
so each modality alone tops out near 5/8 accuracy (2/3 with RAVDESS' half-sized neutral
class) while the fused pair can separate all eight. Cues seen by both modalities (the
syllable tempo that moves the jaw) may only differ between the connected components of
both groupings, {neutral, calm, sad, fearful} and {happy, surprised, angry, disgust};
tempo is therefore two-level.

Intensity 02 exaggerates every cue's deviation from the neutral style; the neutral
styles themselves (and so neutral vs calm audio, neutral vs sad video) are unaffected.

Run ``python -m training.synthetic --root data/synthetic`` to write a dataset.
"""
from __future__ import annotations

import argparse
import logging
import math
import multiprocessing as mp
import os
import time
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Optional, Sequence

import cv2
import numpy as np
from scipy.signal import iirpeak, lfilter
from tqdm import tqdm

from avemo_ros.media import write_media

_LOG = logging.getLogger(__name__)

#: RAVDESS emotion labels in code order (code = index + 1).
LABELS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")

#: Deviation scale of intensity 01 (normal) and 02 (strong).
INTENSITY_SCALE = {1: 1.0, 2: 1.5}


# ----------------------------------------------------------------------------- styles


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


# ----------------------------------------------------------------------------- actors


@dataclass(frozen=True)
class Actor:
    """Per-actor voice and appearance (odd actors male, even female, as in RAVDESS)."""

    female: bool
    f0: float
    formant_scale: float
    gain_db: float
    cx: float  # face centre, fraction of width / height
    cy: float
    half_h: float  # face half height, fraction of frame height
    aspect: float  # half width / half height
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    long_hair: bool
    bg_top: tuple[float, float, float]
    bg_bottom: tuple[float, float, float]
    shirt: tuple[float, float, float]
    light: float  # horizontal light direction, -1..1
    eye_spacing: float
    mouth_width: float
    brow_offset: float
    mouth_offset: float
    sway_px: float
    sway_deg: float


def _luma(rgb: Sequence[float]) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


@lru_cache(maxsize=256)
def make_actor(actor: int, seed: int = 0) -> Actor:
    """Deterministic actor parameters for ``actor`` (1-based) under dataset ``seed``."""
    if actor < 1:
        raise ValueError(f"actor numbers start at 1, got {actor}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(actor), 0xAC7]))
    female = actor % 2 == 0
    f0 = rng.uniform(190.0, 230.0) if female else rng.uniform(110.0, 140.0)
    t = rng.uniform(0.0, 1.0)
    light_skin = np.array([236.0, 198.0, 172.0])
    dark_skin = np.array([128.0, 86.0, 62.0])
    skin = (1 - t) * light_skin + t * dark_skin + rng.uniform(-8, 8, 3)
    hair_choices = [(28, 22, 20), (55, 38, 28), (92, 62, 40), (40, 40, 44), (150, 118, 70)]
    hair = np.array(hair_choices[int(rng.integers(len(hair_choices)))], float)
    hair *= rng.uniform(0.85, 1.1)
    # Hair about as bright as the skin hides the head outline from the face detector.
    skin_luma = _luma(skin)
    if abs(_luma(hair) - skin_luma) < 40.0:
        hair *= max(skin_luma - 40.0, 15.0) / max(_luma(hair), 1.0)
    # Backdrop: clearly lighter or darker than the skin, as studio footage usually is.
    bg_luma = rng.uniform(25.0, 235.0)
    if abs(bg_luma - skin_luma) < 60.0:
        bg_luma = skin_luma + 60.0 if skin_luma < 140.0 else skin_luma - 60.0
    tint = rng.uniform(-25, 25, 3)
    bg_top = np.clip(bg_luma + tint, 5, 250)
    bg_bottom = np.clip(bg_top * rng.uniform(0.75, 1.05), 5, 250)
    shirt = rng.uniform(15, 90, 3) if rng.uniform() < 0.7 else rng.uniform(120, 220, 3)
    return Actor(
        female=female,
        f0=float(f0),
        formant_scale=float((1.15 if female else 1.0) * rng.uniform(0.95, 1.05)),
        gain_db=float(rng.uniform(-2.0, 2.0)),
        cx=float(0.5 + rng.uniform(-0.07, 0.07)),
        cy=float(0.5 + rng.uniform(-0.03, 0.04)),
        half_h=float(rng.uniform(0.27, 0.31)),
        aspect=float(rng.uniform(0.72, 0.80) * (0.97 if female else 1.0)),
        skin=tuple(float(v) for v in np.clip(skin, 0, 255)),
        hair=tuple(float(v) for v in np.clip(hair, 0, 255)),
        long_hair=bool(rng.uniform() < (0.8 if female else 0.1)),
        bg_top=tuple(float(v) for v in bg_top),
        bg_bottom=tuple(float(v) for v in bg_bottom),
        shirt=tuple(float(v) for v in shirt),
        light=float(rng.uniform(-1.0, 1.0)),
        eye_spacing=float(rng.uniform(0.36, 0.42)),
        mouth_width=float(rng.uniform(0.34, 0.42)),
        brow_offset=float(rng.uniform(-0.15, 0.15)),
        mouth_offset=float(rng.uniform(-0.15, 0.15)),
        sway_px=float(rng.uniform(1.5, 4.0)),
        sway_deg=float(rng.uniform(1.0, 3.0)),
    )


# ----------------------------------------------------------------------------- speech timing

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


# ----------------------------------------------------------------------------- voice


@lru_cache(maxsize=64)
def _formant_filters(sample_rate: int, scale: float, open_vowel: bool):
    formants = (750.0, 1250.0, 2600.0) if open_vowel else (330.0, 2100.0, 3000.0)
    out = []
    for i, f in enumerate(formants):
        f = min(f * scale, 0.45 * sample_rate)
        bw = 90.0 + 40.0 * i
        out.append(iirpeak(f, f / bw, fs=sample_rate))
    return tuple(out)


def _smooth_noise(rng: np.random.Generator, n: int, sample_rate: int,
                  rate_hz: float) -> np.ndarray:
    """Band-limited random signal of unit-ish amplitude (linear interpolation of knots)."""
    knots = max(2, int(n / sample_rate * rate_hz) + 2)
    values = rng.standard_normal(knots)
    return np.interp(np.linspace(0, knots - 1, n), np.arange(knots), values)


def _render_voice(rng: np.random.Generator, actor: Actor, style: VoiceStyle, syl: _Syllables,
                  n: int, sample_rate: int) -> np.ndarray:
    t = np.arange(n) / sample_rate
    env = _envelope(syl, t)
    # Pitch contour over the utterance, per-syllable accents, tremolo and jitter.
    u = syl.progress(t)
    accent = 1.0 + 0.04 * (env - 0.5)
    trem_phase = rng.uniform(0, 2 * np.pi)
    tremolo = np.sin(2 * np.pi * rng.uniform(5.5, 6.5) * t + trem_phase)
    jitter = _smooth_noise(rng, n, sample_rate, 60.0)
    drift = _smooth_noise(rng, n, sample_rate, 2.0)
    base = actor.f0 * style.pitch_ratio * float(np.exp(rng.normal(0.0, 0.04)))
    f0 = base * (1.0 + style.contour * (u - 0.5)) * accent
    f0 *= (1.0 + style.tremolo_depth * tremolo) * (1.0 + style.jitter * jitter + 0.01 * drift)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate + rng.uniform(0, 2 * np.pi)
    # Harmonic source with geometric spectral decay: sum_k r^k sin(k phase).
    r = float(np.clip(style.brightness + rng.normal(0.0, 0.015), 0.3, 0.95))
    source = r * np.sin(phase) / (1.0 - 2.0 * r * np.cos(phase) + r * r)
    source *= math.sqrt(2.0 * (1.0 - r * r)) / r
    if style.roughness > 0:
        source *= 1.0 + style.roughness * np.sin(0.5 * phase)
    source += style.breath * 3.0 * np.diff(rng.standard_normal(n + 1))
    # Parallel formants, mixed between an open and a closed vowel per syllable.
    mix = _openness_track(syl, t)
    voiced = 0.15 * source
    for open_vowel, weight in ((True, mix), (False, 1.0 - mix)):
        part = np.zeros(n)
        filters = _formant_filters(sample_rate, actor.formant_scale, open_vowel)
        for gain, (b, a) in zip((1.0, 0.6, 0.3), filters):
            part += gain * lfilter(b, a, source)
        voiced += weight * part
    amp = env * (1.0 + 2.0 * style.tremolo_depth * tremolo)
    speech = voiced * amp
    # Consonant bursts before some syllables (emotion independent).
    for on, st in zip(syl.onsets[::2], syl.stress[::2]):
        lo = int(max(on - 0.05, 0.0) * sample_rate)
        hi = min(int(on * sample_rate), n)
        if hi > lo:
            burst = np.diff(rng.standard_normal(hi - lo + 1)) * np.hanning(hi - lo)
            speech[lo:hi] += 0.2 * st * burst
    active = env > 0.2
    rms = float(np.sqrt(np.mean(speech[active] ** 2))) if active.any() else 1.0
    level_db = -22.0 + style.gain_db + actor.gain_db + rng.uniform(-1.5, 1.5)
    return speech * (10.0 ** (level_db / 20.0) / max(rms, 1e-9))


def _background_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    white = rng.standard_normal(n)
    pinkish = lfilter([1.0], [1.0, -0.9], white)
    pinkish /= max(float(np.std(pinkish)), 1e-9)
    return pinkish * 10.0 ** (rng.uniform(-60.0, -42.0) / 20.0)


# ----------------------------------------------------------------------------- face

# A greyish sclera and a large iris keep the eye band dark enough for the Haar cascade
# even with wide-open eyes (bright, wide eyes made detection fail).
_SCLERA = (182, 178, 172)
_IRIS = 0.6  # iris radius relative to the eye half width
_NOISE_SD = 2.5  # sensor noise, grey levels


def _gauss(xx: np.ndarray, yy: np.ndarray, x0: float, y0: float, sx: float,
           sy: float) -> np.ndarray:
    return np.exp(-0.5 * (((xx - x0) / sx) ** 2 + ((yy - y0) / sy) ** 2))


@dataclass(frozen=True)
class _Geometry:
    cx: float
    cy: float
    a: float  # face half width, px
    b: float  # face half height, px


def _render_background(actor: Actor, w: int, h: int, geo: _Geometry) -> np.ndarray:
    """Backdrop, neck and shoulders (static for the clip), uint8 RGB."""
    y = np.linspace(0.0, 1.0, h)[:, None, None]
    top = np.array(actor.bg_top, np.float32)
    bottom = np.array(actor.bg_bottom, np.float32)
    img = (top * (1 - y) + bottom * y) * np.ones((1, w, 1), np.float32)
    xx = np.arange(w, dtype=np.float32)[None, :]
    yy = np.arange(h, dtype=np.float32)[:, None]
    vignette = 1.0 - 0.18 * (((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2)
    img *= vignette[..., None]
    img = np.clip(img, 0, 255).astype(np.uint8)
    neck = tuple(v * 0.78 for v in actor.skin)
    cx, cy, a, b = geo.cx, geo.cy, geo.a, geo.b
    cv2.rectangle(img, (int(cx - 0.42 * a), int(cy)), (int(cx + 0.42 * a), h), neck, -1,
                  cv2.LINE_AA)
    shoulders = np.array([[cx - 2.3 * a, h], [cx - 1.9 * a, cy + 1.25 * b],
                          [cx - 0.45 * a, cy + 1.05 * b], [cx + 0.45 * a, cy + 1.05 * b],
                          [cx + 1.9 * a, cy + 1.25 * b], [cx + 2.3 * a, h]], np.int32)
    cv2.fillPoly(img, [shoulders], actor.shirt, cv2.LINE_AA)
    return cv2.GaussianBlur(img, (0, 0), 1.2)


def _render_head(actor: Actor, w: int, h: int, geo: _Geometry) -> tuple[np.ndarray, np.ndarray]:
    """Shaded head without eyes, brows and mouth: (uint8 RGB layer, float32 alpha)."""
    cx, cy, a, b = geo.cx, geo.cy, geo.a, geo.b
    layer = np.zeros((h, w, 3), np.uint8)
    alpha = np.zeros((h, w), np.uint8)
    hair = actor.hair
    centre = (int(round(cx)), int(round(cy)))
    # Hair behind the head, long hair down to the shoulders.
    hair_axes = (int(1.13 * a), int(1.12 * b))
    hair_c = (centre[0], int(cy - 0.12 * b))
    for img, col in ((layer, hair), (alpha, 255)):
        cv2.ellipse(img, hair_c, hair_axes, 0, 0, 360, col, -1, cv2.LINE_AA)
        if actor.long_hair:
            cv2.rectangle(img, (int(cx - 1.13 * a), int(cy - 0.1 * b)),
                          (int(cx + 1.13 * a), int(cy + 1.15 * b)), col, -1, cv2.LINE_AA)
    # Ears and face oval.
    ear_axes = (int(0.14 * a), int(0.2 * b))
    for side in (-1, 1):
        ear = (int(cx + side * 0.97 * a), int(cy - 0.05 * b))
        cv2.ellipse(layer, ear, ear_axes, 0, 0, 360, tuple(v * 0.85 for v in actor.skin), -1,
                    cv2.LINE_AA)
        cv2.ellipse(alpha, ear, ear_axes, 0, 0, 360, 255, -1, cv2.LINE_AA)
    face_mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(face_mask, centre, (int(a), int(b)), 0, 0, 360, 255, -1, cv2.LINE_AA)
    cv2.ellipse(alpha, centre, (int(a), int(b)), 0, 0, 360, 255, -1, cv2.LINE_AA)
    # Shading of the face oval (computed on its bounding box only).
    x0, x1 = max(int(cx - 1.2 * a), 0), min(int(cx + 1.2 * a) + 1, w)
    y0, y1 = max(int(cy - 1.2 * b), 0), min(int(cy + 1.2 * b) + 1, h)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    u, v = (xx - cx) / a, (yy - cy) / b
    rho = np.sqrt(u * u + v * v)
    shade = 1.0 - 0.32 * np.clip(rho, 0, 1.2) ** 4 + 0.10 * actor.light * u
    es = actor.eye_spacing
    for side in (-1, 1):  # eye sockets and cheek highlights
        shade -= 0.34 * _gauss(u, v, side * es, -0.13, 0.22, 0.12)
        shade -= 0.10 * _gauss(u, v, side * es * 0.9, -0.32, 0.25, 0.08)
        shade += 0.06 * _gauss(u, v, side * 0.45, 0.22, 0.2, 0.14)
    shade += 0.05 * _gauss(u, v, 0.0, -0.08, 0.06, 0.18)  # nose bridge
    side = 1.0 if actor.light < 0 else -1.0  # shadow opposite the light
    shade -= 0.12 * _gauss(u, v, side * 0.1, 0.05, 0.05, 0.2)  # nose flank
    shade -= 0.22 * _gauss(u, v, 0.0, 0.3, 0.14, 0.04)  # under the nose tip
    shade -= 0.08 * _gauss(u, v, 0.0, 0.68, 0.2, 0.05)  # under the lower lip
    shade -= 0.18 * np.clip(v - 0.85, 0, 1) * 4  # jaw shadow
    skin = np.array(actor.skin, np.float32)
    face = np.clip(shade[..., None] * skin, 0, 255).astype(np.uint8)
    m = face_mask[y0:y1, x0:x1, None].astype(np.float32) / 255.0
    roi = layer[y0:y1, x0:x1].astype(np.float32)
    layer[y0:y1, x0:x1] = (roi * (1 - m) + face * m).astype(np.uint8)
    # Nostrils and fringe.
    nostril = tuple(v * 0.45 for v in actor.skin)
    nostril_axes = (max(int(0.05 * a), 1), max(int(0.025 * b), 1))
    for s in (-1, 1):
        cv2.ellipse(layer, (int(cx + s * 0.1 * a), int(cy + 0.26 * b)), nostril_axes, 0, 0, 360,
                    nostril, -1, cv2.LINE_AA)
    cv2.ellipse(layer, (int(cx), int(cy - 0.62 * b)), (int(1.02 * a), int(0.5 * b)), 0, 180, 360,
                hair, -1, cv2.LINE_AA)
    layer = cv2.GaussianBlur(layer, (0, 0), 0.8)
    alpha_f = cv2.GaussianBlur(alpha, (0, 0), 1.0).astype(np.float32) / 255.0
    return layer, alpha_f


def _pt(x: float, y: float) -> tuple[int, int]:
    """Point in cv2 fixed point with 4 fractional bits (``shift=4``)."""
    return (int(round(x * 16)), int(round(y * 16)))


def _pts(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Polyline points in cv2 fixed point (``shift=4``), int32 (n, 2)."""
    return np.round(np.stack([xs, ys], axis=1) * 16.0).astype(np.int32)


def _draw_features(img: np.ndarray, actor: Actor, geo: _Geometry, face: FaceStyle,
                   jaw: float, blink: float) -> None:
    """Draw eyes, brows and mouth on ``img`` in place (sub-pixel, anti-aliased)."""
    cx, cy, a, b = geo.cx, geo.cy, geo.a, geo.b
    sh, aa = 4, cv2.LINE_AA
    skin = np.array(actor.skin)
    es = actor.eye_spacing
    # Eyes: sclera, iris, pupil, upper lid.
    ew = 0.19 * a
    eh = max(0.42 * ew * face.eye_open * blink, 0.6)
    lid = tuple(skin * 0.35)
    for s in (-1, 1):
        ex, ey = cx + s * es * a, cy - 0.13 * b
        if eh > 1.2:
            cv2.ellipse(img, _pt(ex, ey), _pt(ew, eh), 0, 0, 360, _SCLERA, -1, aa, sh)
            ri = min(_IRIS * ew, eh * 1.05)
            cv2.ellipse(img, _pt(ex, ey), _pt(_IRIS * ew, ri), 0, 0, 360, (70, 50, 35), -1, aa, sh)
            pupil = _pt(0.22 * ew, min(0.22 * ew, eh))
            cv2.ellipse(img, _pt(ex, ey), pupil, 0, 0, 360, (12, 10, 10), -1, aa, sh)
        cv2.ellipse(img, _pt(ex, ey), _pt(ew * 1.05, eh + 0.5), 0, 180, 360, lid, 2, aa, sh)
        cv2.ellipse(img, _pt(ex, ey), _pt(ew, eh), 0, 0, 180, tuple(skin * 0.6), 1, aa, sh)
    # Brows: inner and outer ends, slightly arched.
    brow = tuple(np.minimum(np.array(actor.hair) * 0.8, skin * 0.5))  # fair hair, darker brows
    thick = max(int(round(0.075 * b)), 2)
    base_y = cy - (0.36 + 0.11 * (face.brow_raise + actor.brow_offset)) * b
    for s in (-1, 1):
        inner = (cx + s * 0.13 * a, base_y - 0.09 * face.brow_tilt * b)
        mid = (cx + s * 0.38 * a, base_y - 0.04 * b)
        outer = (cx + s * 0.62 * a, base_y + 0.02 * b)
        pts = np.array([_pt(*inner), _pt(*mid), _pt(*outer)], np.int32)
        cv2.polylines(img, [pts], False, brow, thick, aa, sh)
    # Mouth: lips along a parabola; corners up for a smile, an opening that follows the jaw.
    mw = actor.mouth_width * face.mouth_width * a
    my = cy + 0.47 * b
    curve = (face.mouth_curve + actor.mouth_offset * 0.3) * 0.14 * b
    gap = jaw * 0.26 * b
    xs = np.linspace(-1.0, 1.0, 15)
    centre_line = my - curve * (xs ** 2 - 0.3)
    bulge = np.sqrt(np.clip(1.0 - xs ** 2, 0, 1))
    upper = centre_line - 0.3 * gap * bulge
    lower = centre_line + 0.7 * gap * bulge
    lip = tuple(skin * np.array([0.78, 0.52, 0.5]))
    top_pts = _pts(cx + xs * mw, upper)
    bot_pts = _pts(cx + xs[::-1] * mw, lower[::-1])
    if gap > 1.0:
        cv2.fillPoly(img, [np.concatenate([top_pts, bot_pts])], (45, 18, 20), aa, sh)
        if face.mouth_curve > 0.3:  # teeth in a smile
            teeth_edge = _pts(cx + xs[::-1] * mw * 0.9, upper[::-1] + 0.3 * gap)
            teeth = np.concatenate([top_pts, teeth_edge])
            cv2.fillPoly(img, [teeth], (230, 228, 220), aa, sh)
    lip_w = max(int(round(0.05 * b)), 2)
    cv2.polylines(img, [top_pts], False, lip, lip_w, aa, sh)
    cv2.polylines(img, [bot_pts], False, lip, lip_w + 1, aa, sh)
    cv2.polylines(img, [_pts(cx + xs * mw, centre_line)], False, tuple(skin * 0.3), 1, aa, sh)


def _blink_track(rng: np.random.Generator, times: np.ndarray) -> np.ndarray:
    """Eye aperture factor per frame: 1 open, ~0.1 mid-blink."""
    out = np.ones(times.shape)
    t = rng.uniform(0.3, 2.5)
    end = float(times[-1]) if times.size else 0.0
    while t < end:
        dist = np.abs(times - t)
        out = np.minimum(out, np.clip(dist / 0.08, 0.1, 1.0))
        t += rng.uniform(1.8, 4.5)
    return out


def _render_frames(rng: np.random.Generator, actor: Actor, face: FaceStyle, syl: _Syllables,
                   n_frames: int, fps: float, size: tuple[int, int]) -> np.ndarray:
    w, h = int(size[0]), int(size[1])
    geo = _Geometry(cx=actor.cx * w, cy=actor.cy * h, a=actor.half_h * h * actor.aspect,
                    b=actor.half_h * h)
    background = _render_background(actor, w, h, geo)
    head, alpha = _render_head(actor, w, h, geo)
    times = np.arange(n_frames) / fps
    # Jaw follows the articulation envelope averaged over each frame period.
    sub = times[:, None] + (np.arange(4)[None, :] / 4.0 - 0.375) / fps
    jaw_env = _envelope(syl, sub.ravel()).reshape(sub.shape).mean(axis=1)
    jaw_open = _openness_track(syl, times)
    jaw = np.clip(face.mouth_open + 0.45 * jaw_env * (0.5 + 0.5 * jaw_open), 0.0, 1.2)
    blink = _blink_track(rng, times)
    # Smooth head sway: a few random sinusoids per axis.
    freqs = rng.uniform(0.15, 0.9, (3, 3))
    phases = rng.uniform(0, 2 * np.pi, (3, 3))
    waves = np.sin(2 * np.pi * freqs[:, :, None] * times[None, None, :] + phases[:, :, None])
    sway = waves.sum(axis=1) / math.sqrt(3.0)
    dx, dy, rot = sway[0] * actor.sway_px, sway[1] * actor.sway_px * 0.6, sway[2] * actor.sway_deg
    flicker = 1.0 + 0.01 * _smooth_noise(rng, n_frames, int(max(fps, 1)), 2.0)
    # Sensor noise: one field stored around 128, shifted per frame.
    noise = rng.normal(128.0, _NOISE_SD, (h + 8, w + 8, 3))
    noise = np.clip(np.round(noise), 0, 255).astype(np.uint8)
    offsets = rng.integers(0, 8, (n_frames, 2))
    # Only the head's neighbourhood changes from frame to frame.
    pad = 8 + int(actor.sway_px * 2)
    x0, x1 = max(int(geo.cx - 1.3 * geo.a) - pad, 0), min(int(geo.cx + 1.3 * geo.a) + pad, w)
    y0, y1 = max(int(geo.cy - 1.4 * geo.b) - pad, 0), min(int(geo.cy + 1.3 * geo.b) + pad, h)
    head_roi = np.ascontiguousarray(head[y0:y1, x0:x1])
    alpha_roi = np.ascontiguousarray(alpha[y0:y1, x0:x1])
    local = replace(geo, cx=geo.cx - x0, cy=geo.cy - y0)
    size_roi = (x1 - x0, y1 - y0)
    bg_roi = np.ascontiguousarray(background[y0:y1, x0:x1])
    pivot = (local.cx, local.cy + 0.8 * local.b)
    frames = np.empty((n_frames, h, w, 3), np.uint8)
    frame = background.copy()
    for j in range(n_frames):
        layer = head_roi.copy()
        _draw_features(layer, actor, local, face, float(jaw[j]), float(blink[j]))
        m = cv2.getRotationMatrix2D(pivot, float(rot[j]), 1.0)
        m[0, 2] += dx[j]
        m[1, 2] += dy[j]
        moved = cv2.warpAffine(layer, m, size_roi, flags=cv2.INTER_LINEAR)
        mask = cv2.warpAffine(alpha_roi, m, size_roi, flags=cv2.INTER_LINEAR)
        frame[y0:y1, x0:x1] = cv2.blendLinear(moved, bg_roi, mask, 1.0 - mask + 1e-6)
        oy, ox = offsets[j]
        frames[j] = cv2.addWeighted(frame, float(flicker[j]), noise[oy:oy + h, ox:ox + w], 1.0,
                                    -128.0)
    return frames


# ----------------------------------------------------------------------------- clips


def _clip_rng(seed: int, actor: int, emotion: str, intensity: int, statement: int,
              repetition: int) -> np.random.Generator:
    code = LABELS.index(emotion) + 1
    return np.random.default_rng(np.random.SeedSequence(
        [int(seed), int(actor), code, int(intensity), int(statement), int(repetition)]))


def render_clip(emotion: str, actor: int, *, duration_s: float = 3.6, seed: int = 0,
                fps: float = 30.0, size: tuple[int, int] = (320, 240), sample_rate: int = 48000,
                intensity: int = 1, statement: int = 1,
                repetition: int = 1) -> tuple[np.ndarray, np.ndarray, int]:
    """Render one clip: (frames (N, H, W, 3) uint8 RGB, mono float32 audio, sample rate).

    Pure and deterministic in its arguments. ``size`` is (width, height); ``intensity``
    1 (normal) or 2 (strong); ``statement`` 1 or 2; ``repetition`` varies the take.
    """
    _check_emotion(emotion)
    if intensity not in INTENSITY_SCALE:
        raise ValueError(f"intensity must be 1 or 2, got {intensity}")
    if statement not in _STATEMENTS:
        raise ValueError(f"statement must be 1 or 2, got {statement}")
    if duration_s <= 0 or fps <= 0 or sample_rate <= 0:
        raise ValueError("duration_s, fps and sample_rate must be positive")
    if size[0] < 64 or size[1] < 64 or size[0] % 2 or size[1] % 2:
        raise ValueError(f"size must be even and at least 64 x 64, got {size}")
    person = make_actor(actor, seed)
    rng = _clip_rng(seed, actor, emotion, intensity, statement, repetition)
    scale = INTENSITY_SCALE[intensity] * rng.uniform(0.9, 1.1)
    voice = _exaggerate(_VOICES[_VOICE_OF[emotion]], _VOICES["level"], scale)
    face = _exaggerate(_FACES[_FACE_OF[emotion]], _FACES["rest"], scale)
    slow = _TEMPI["slow"]
    rate = (slow + (_TEMPI[_TEMPO_OF[emotion]] - slow) * scale) * rng.uniform(0.93, 1.07)
    speech_start = rng.uniform(0.35, 0.75) * min(1.0, duration_s / 3.6)
    syl = _plan_syllables(rng, statement, rate, speech_start, duration_s)
    rng_audio, rng_video = rng.spawn(2)
    n_samples = int(round(duration_s * sample_rate))
    audio = _render_voice(rng_audio, person, voice, syl, n_samples, sample_rate)
    audio += _background_noise(rng_audio, n_samples)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0.95:  # soft limiter instead of hard clipping
        audio = 0.95 * np.tanh(audio / 0.95)
    n_frames = int(round(duration_s * fps))
    frames = _render_frames(rng_video, person, face, syl, n_frames, fps, size)
    return frames, audio.astype(np.float32), int(sample_rate)


# ----------------------------------------------------------------------------- dataset


def ravdess_name(emotion: str, intensity: int, statement: int, repetition: int, actor: int) -> str:
    """RAVDESS audio-video speech file name, e.g. ``01-01-03-02-01-01-12.mp4``."""
    code = LABELS.index(_check_emotion(emotion)) + 1
    return f"01-01-{code:02d}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}.mp4"


@dataclass(frozen=True)
class _Job:
    path: str
    emotion: str
    actor: int
    intensity: int
    statement: int
    repetition: int
    seed: int
    duration_s: float


def _dataset_jobs(root: Path, actors: Iterable[int], repetitions: int, statements: Iterable[int],
                  seed: int, duration_s: float) -> list[_Job]:
    jobs = []
    for actor in actors:
        for emotion in LABELS:
            intensities = (1,) if emotion == "neutral" else (1, 2)
            for intensity in intensities:
                for statement in statements:
                    for rep in range(1, repetitions + 1):
                        name = ravdess_name(emotion, intensity, statement, rep, actor)
                        path = root / f"Actor_{actor:02d}" / name
                        jobs.append(_Job(str(path), emotion, int(actor), intensity, int(statement),
                                         rep, seed, duration_s))
    return jobs


def _run_job(job: _Job) -> str:
    frames, audio, sr = render_clip(job.emotion, job.actor, seed=job.seed, intensity=job.intensity,
                                    statement=job.statement, repetition=job.repetition,
                                    duration_s=job.duration_s)
    path = Path(job.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    write_media(tmp, frames, 30.0, audio, sr, threads=1)
    os.replace(tmp, path)
    return job.path


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one clip per process; OpenCV's own threads would oversubscribe


def generate_dataset(root: "str | os.PathLike", *, actors: Iterable[int] = range(1, 11),
                     repetitions: int = 2, statements: Sequence[int] = (1, 2), seed: int = 0,
                     workers: int = 2, progress: bool = True,
                     duration_s: float = 3.6) -> list[Path]:
    """Write the synthetic set under ``root/Actor_XX/`` in RAVDESS naming; return all paths.

    Existing non-empty files are kept (idempotent). Neutral has intensity 01 only, the
    other emotions 01 and 02, so each actor has ``15 * len(statements) * repetitions``
    clips (600 for the defaults). ``workers`` > 1 renders in a process pool.
    """
    if repetitions < 1:
        raise ValueError(f"repetitions must be >= 1, got {repetitions}")
    for s in statements:
        if s not in _STATEMENTS:
            raise ValueError(f"statements must be 1 and/or 2, got {s}")
    root = Path(root)
    jobs = _dataset_jobs(root, list(actors), repetitions, list(statements), seed, duration_s)
    todo = [j for j in jobs if not (os.path.isfile(j.path) and os.path.getsize(j.path) > 0)]
    _LOG.info("%d clips under %s, %d to render", len(jobs), root, len(todo))
    bar = tqdm(total=len(todo), unit="clip", disable=not progress or not todo)
    try:
        if workers <= 1 or len(todo) <= 1:
            for job in todo:
                _run_job(job)
                bar.update(1)
        else:
            # forkserver: a fork of a process with threads (rclpy, torch, a test runner)
            # can deadlock in the child; the server process has none.
            with mp.get_context("forkserver").Pool(workers, initializer=_init_worker) as pool:
                for _ in pool.imap_unordered(_run_job, todo, chunksize=2):
                    bar.update(1)
    finally:
        bar.close()
    return sorted(Path(j.path) for j in jobs)


def _parse_actors(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = (int(v) for v in part.split("-", 1))
            out.extend(range(lo, hi + 1))
        else:
            out.append(int(part))
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"bad actor list {text!r} (use e.g. 1-10 or 1,3,5)")
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        description="Write the synthetic RAVDESS-style emotion dataset.")
    parser.add_argument("--root", type=Path, default=Path("data/synthetic"),
                        help="output directory")
    parser.add_argument("--actors", type=_parse_actors, default=list(range(1, 11)),
                        help="e.g. 1-10 or 1,2,5")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repetitions", type=int, default=2)
    parser.add_argument("--statements", type=int, nargs="+", default=[1, 2], choices=[1, 2])
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    start = time.monotonic()
    paths = generate_dataset(args.root, actors=args.actors, repetitions=args.repetitions,
                             statements=tuple(args.statements), seed=args.seed,
                             workers=args.workers, progress=not args.no_progress)
    _LOG.info("%d clips ready under %s in %.1f s", len(paths), args.root, time.monotonic() - start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
