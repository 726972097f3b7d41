"""One clip: frames and audio of one emotion, actor, intensity, statement and take."""
from __future__ import annotations

import numpy as np

from .actors import make_actor
from .face import _render_frames
from .speech import _STATEMENTS, _plan_syllables
from .styles import (_FACE_OF, _FACES, _TEMPI, _TEMPO_OF, _VOICE_OF, _VOICES, INTENSITY_SCALE,
                     LABELS, _check_emotion, _exaggerate)
from .voice import _background_noise, _render_voice


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
