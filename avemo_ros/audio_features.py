"""Audio preprocessing: mono float conversion, resampling and the log spectrogram.

A plain NumPy STFT (no numba JIT) so the first window of a live node is not late; the
same functions build the training features.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from math import gcd

import numpy as np
from scipy.signal import resample_poly


@dataclass(frozen=True)
class AudioFeatureConfig:
    """Spectrogram parameters (seed 001: 3 s of audio -> 200 x 300 spectrogram).

    At 16 kHz: 25 ms Hann window, 10 ms hop, centred frames; bins 1..200 of a 400-point
    FFT (40 Hz - 8 kHz). Log power in dB, floored at ``floor_db`` below the window's
    peak, then standardised per window (zero mean, unit variance).
    """

    sample_rate: int = 16000
    window_s: float = 3.0
    n_fft: int = 400
    hop_length: int = 160
    n_bins: int = 200
    n_frames: int = 300
    floor_db: float = 80.0

    @property
    def n_samples(self) -> int:
        """Samples in one analysis window at the model sample rate."""
        return int(round(self.window_s * self.sample_rate))

    @property
    def shape(self) -> tuple[int, int]:
        """Spectrogram shape (frequency bins, time frames)."""
        return (self.n_bins, self.n_frames)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AudioFeatureConfig":
        return cls(**d)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """(n,) or (n, channels) float samples -> (n,) float32 mean over channels."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    elif x.ndim != 1:
        raise ValueError(f"audio must be (n,) or (n, channels), got shape {x.shape}")
    return x


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Polyphase resampling along the first axis ((n,) or (n, channels)) between integer rates."""
    if rate_in <= 0 or rate_out <= 0:
        raise ValueError(f"sample rates must be positive, got {rate_in} -> {rate_out}")
    x = np.asarray(x, dtype=np.float32)
    if rate_in == rate_out or x.shape[0] == 0:
        return x
    g = gcd(int(rate_in), int(rate_out))
    return resample_poly(x, int(rate_out) // g, int(rate_in) // g, axis=0).astype(np.float32)


@lru_cache(maxsize=8)
def _hann(n: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


def spectrogram(x: np.ndarray, cfg: AudioFeatureConfig = AudioFeatureConfig()) -> np.ndarray:
    """Mono audio at ``cfg.sample_rate`` -> standardised log spectrogram ``cfg.shape``.

    The signal is cut or zero-padded (at the end) to exactly one window first.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"spectrogram expects mono audio, got shape {x.shape}")
    n = cfg.n_samples
    if x.size < n:
        x = np.pad(x, (0, n - x.size))
    else:
        x = x[:n]
    half = cfg.n_fft // 2
    padded = np.pad(x, (half, half), mode="reflect")
    idx = np.arange(cfg.n_frames)[:, None] * cfg.hop_length + np.arange(cfg.n_fft)[None, :]
    frames = padded[idx] * _hann(cfg.n_fft)
    power = np.abs(np.fft.rfft(frames, axis=1)[:, 1:cfg.n_bins + 1]) ** 2  # (frames, bins)
    db = 10.0 * np.log10(np.maximum(power, 1e-12))
    db = np.maximum(db, db.max() - cfg.floor_db)
    spec = db.T
    std = spec.std()
    spec = (spec - spec.mean()) / (std if std > 1e-6 else 1.0)
    return spec.astype(np.float32)


def audio_features(samples: np.ndarray, sample_rate: int,
                   cfg: AudioFeatureConfig = AudioFeatureConfig()) -> np.ndarray:
    """Any-rate (n,) / (n, ch) float audio -> the model's spectrogram (one window)."""
    return spectrogram(resample(to_mono(samples), sample_rate, cfg.sample_rate), cfg)
