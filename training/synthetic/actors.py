"""Actors: deterministic per-actor voice and appearance (odd actors male, even female)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np


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
