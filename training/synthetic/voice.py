"""The voice: a harmonic source through a cascade of formant resonators, gated by the
syllable envelope, plus background noise."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.signal import lfilter

from .actors import Actor
from .speech import _envelope, _openness_track, _Syllables
from .styles import VoiceStyle


# Formant frequencies (Hz) of an open (/a/) and a closed (/i/) vowel, and their bandwidths.
_FORMANTS = {True: (750.0, 1250.0, 2600.0, 3500.0, 4500.0),
             False: (330.0, 2100.0, 3000.0, 3600.0, 4500.0)}
_BANDWIDTHS = (80.0, 100.0, 140.0, 200.0, 250.0)
_REF_F0 = 150.0  # Hz: pitch up to which the source decays by the style brightness per harmonic


@lru_cache(maxsize=64)
def _formant_filters(sample_rate: int, scale: float, open_vowel: bool):
    """Two-pole resonators of unit gain at 0 Hz, applied in cascade (an all-pole vocal tract:
    the spectral shape between and below the formants of a real voice, which a voice
    activity detector expects; a parallel bank of peak filters sounds like a few tones)."""
    out = []
    for f, bw in zip(_FORMANTS[open_vowel], _BANDWIDTHS):
        f = min(f * scale, 0.45 * sample_rate)
        r = math.exp(-math.pi * bw / sample_rate)
        c = 2.0 * r * math.cos(2.0 * math.pi * f / sample_rate)
        out.append(((1.0 - c + r * r,), (1.0, -c, r * r)))
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
    accent = 1.0 + 0.15 * (env - 0.75)  # pitch rises and falls over each syllable
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
    r = r ** max(1.0, base / _REF_F0)  # the same spectral slope per Hz at any pitch
    source = r * np.sin(phase) / (1.0 - 2.0 * r * np.cos(phase) + r * r)
    source *= math.sqrt(2.0 * (1.0 - r * r)) / r
    if style.roughness > 0:
        source *= 1.0 + style.roughness * np.sin(0.5 * phase)
    source += style.breath * 3.0 * np.diff(rng.standard_normal(n + 1))
    # Cascaded formants, mixed between an open and a closed vowel per syllable.
    mix = _openness_track(syl, t)
    voiced = np.zeros(n)
    for open_vowel, weight in ((True, mix), (False, 1.0 - mix)):
        part = source
        for b, a in _formant_filters(sample_rate, actor.formant_scale, open_vowel):
            part = lfilter(b, a, part)
        voiced += weight * part
    amp = env * (1.0 + 2.0 * style.tremolo_depth * tremolo)
    speech = voiced * amp
    # A consonant (a burst of high-passed noise, 80 ms) before every syllable, emotion
    # independent: without them a voice activity detector hears a hummed tune, not speech.
    for on, st in zip(syl.onsets, syl.stress):
        lo = int(max(on - 0.08, 0.0) * sample_rate)
        hi = min(int(on * sample_rate), n)
        if hi > lo:
            burst = np.diff(rng.standard_normal(hi - lo + 1)) * np.hanning(hi - lo)
            speech[lo:hi] += 0.4 * st * burst
    active = env > 0.2
    rms = float(np.sqrt(np.mean(speech[active] ** 2))) if active.any() else 1.0
    level_db = -22.0 + style.gain_db + actor.gain_db + rng.uniform(-1.5, 1.5)
    return speech * (10.0 ** (level_db / 20.0) / max(rms, 1e-9))


def _background_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    white = rng.standard_normal(n)
    pinkish = lfilter([1.0], [1.0, -0.9], white)
    pinkish /= max(float(np.std(pinkish)), 1e-9)
    return pinkish * 10.0 ** (rng.uniform(-60.0, -42.0) / 20.0)
