"""Audio preprocessing: mono float conversion, resampling and the log spectrogram.

A plain NumPy STFT (no numba JIT) so the first window of a live node is not late; the
same functions build the training features. ``test/test_audio_features.py`` checks the STFT,
mel, MFCC, chroma, spectral contrast and tonnetz against librosa: the same definitions to
float rounding, except the chroma kernel and the contrast band edges (documented there).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from math import gcd

import numpy as np
from scipy.fft import dct
from scipy.signal import resample_poly

N_CHROMA, N_CONTRAST, N_TONNETZ = 12, 7, 6


#: The audio feature kinds a bundle may ask for (``AudioFeatureConfig.kind``).
KINDS = ("spectrogram", "frame_features", "summary_features")


@dataclass(frozen=True)
class AudioFeatureConfig:
    """Audio feature parameters; ``kind`` selects the representation.

    - ``spectrogram`` (seed 001: 3 s of audio -> 200 x 300): at 16 kHz a 25 ms Hann
      window, 10 ms hop, centred frames; bins 1..200 of a 400-point FFT (40 Hz - 8 kHz).
      Log power in dB, floored at ``floor_db`` below the window's peak, then standardised
      per window (zero mean, unit variance). Shape (n_bins, n_frames).
    - ``frame_features`` (seed 003's "180 x 20"): per STFT frame ``n_mfcc`` MFCCs,
      12 chroma bins and ``n_mels`` log-mel bands, averaged into ``n_frames`` equal time
      segments; each of the three blocks standardised per window. Shape
      (n_mfcc + 12 + n_mels, n_frames).
    - ``summary_features`` (seed 002): time means of MFCCs (standardised over the
      coefficients), chroma, 7 spectral-contrast bands (dB / 20) and 6 tonnetz
      coordinates. Shape (n_mfcc + 12 + 7 + 6,).
    """

    sample_rate: int = 16000
    window_s: float = 3.0
    n_fft: int = 400
    hop_length: int = 160
    n_bins: int = 200
    n_frames: int = 300
    floor_db: float = 80.0
    kind: str = "spectrogram"
    n_mels: int = 128
    n_mfcc: int = 40

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown audio feature kind {self.kind!r}; "
                             f"known: {', '.join(KINDS)}")
        if self.kind == "spectrogram" and self.n_bins > self.n_fft // 2:
            raise ValueError(f"n_bins {self.n_bins} exceeds the {self.n_fft // 2} bins of "
                             f"n_fft {self.n_fft}")
        if self.n_mfcc > self.n_mels:
            raise ValueError(f"n_mfcc {self.n_mfcc} exceeds n_mels {self.n_mels}")

    @property
    def n_samples(self) -> int:
        """Samples in one analysis window at the model sample rate."""
        return int(round(self.window_s * self.sample_rate))

    @property
    def n_stft_frames(self) -> int:
        """STFT frames in one window (centred frames, one per hop)."""
        return self.n_samples // self.hop_length + 1

    @property
    def shape(self) -> tuple[int, ...]:
        """Feature array shape: see the class docstring for each kind."""
        if self.kind == "spectrogram":
            return (self.n_bins, self.n_frames)
        if self.kind == "frame_features":
            return (self.n_mfcc + N_CHROMA + self.n_mels, self.n_frames)
        return (self.n_mfcc + N_CHROMA + N_CONTRAST + N_TONNETZ,)

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


def _one_window(x: np.ndarray, cfg: AudioFeatureConfig) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"audio features expect mono audio, got shape {x.shape}")
    n = cfg.n_samples
    return np.pad(x, (0, n - x.size)) if x.size < n else x[:n]


def power_spectrum(x: np.ndarray, cfg: AudioFeatureConfig,
                   n_frames: int | None = None) -> np.ndarray:
    """One window of mono audio -> STFT power (frames, n_fft // 2 + 1), centred Hann frames.

    The signal is cut or zero-padded (at the end) to exactly one window first.
    """
    x = _one_window(x, cfg)
    n_frames = cfg.n_stft_frames if n_frames is None else n_frames
    half = cfg.n_fft // 2
    padded = np.pad(x, (half, half), mode="reflect")
    idx = np.arange(n_frames)[:, None] * cfg.hop_length + np.arange(cfg.n_fft)[None, :]
    frames = padded[idx] * _hann(cfg.n_fft)
    return np.abs(np.fft.rfft(frames, axis=1)) ** 2


def spectrogram(x: np.ndarray, cfg: AudioFeatureConfig = AudioFeatureConfig()) -> np.ndarray:
    """Mono audio at ``cfg.sample_rate`` -> standardised log spectrogram ``cfg.shape``."""
    power = power_spectrum(x, cfg, cfg.n_frames)[:, 1:cfg.n_bins + 1]  # (frames, bins)
    db = 10.0 * np.log10(np.maximum(power, 1e-12))
    db = np.maximum(db, db.max() - cfg.floor_db)
    return _standardise(db.T)


def _standardise(a: np.ndarray) -> np.ndarray:
    std = a.std()
    return ((a - a.mean()) / (std if std > 1e-6 else 1.0)).astype(np.float32)


def _hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters on the HTK mel scale, unit area."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = _mel_to_hz(np.linspace(0.0, _hz_to_mel(sample_rate / 2), n_mels + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None, :] - lo) / np.maximum(mid - lo, 1e-9)
    down = (hi - freqs[None, :]) / np.maximum(hi - mid, 1e-9)
    fb = np.maximum(0.0, np.minimum(up, down))
    fb *= 2.0 / np.maximum(hi - lo, 1e-9)
    return fb.astype(np.float32)


@lru_cache(maxsize=8)
def chroma_filterbank(sample_rate: int, n_fft: int, tuning_hz: float = 440.0) -> np.ndarray:
    """(12, n_fft // 2 + 1) weights of each FFT bin on the 12 pitch classes (C = 0).

    A bin contributes to the pitch classes within one semitone of its centre frequency,
    weighted by a triangle; bins below 27.5 Hz (A0) are ignored. (librosa spreads a bin as a
    Gaussian as wide as the bin and weights octaves: the same where bins are narrower than a
    semitone.)
    """
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    fb = np.zeros((N_CHROMA, freqs.size), np.float32)
    valid = freqs >= 27.5
    midi = 69.0 + 12.0 * np.log2(freqs[valid] / tuning_hz)
    classes = np.arange(N_CHROMA)[:, None]
    dist = np.abs(((midi[None, :] - classes) + 6.0) % 12.0 - 6.0)  # semitones to each class
    fb[:, valid] = np.maximum(0.0, 1.0 - dist)
    return fb


def _tonnetz_basis() -> np.ndarray:
    """(6, 12) tonal-centroid projection: fifths, minor thirds, major thirds (Harte 2006)."""
    k = np.arange(N_CHROMA)
    rows = []
    for angle, radius in ((7 * np.pi / 6, 1.0), (3 * np.pi / 2, 1.0), (2 * np.pi / 3, 0.5)):
        rows += [radius * np.sin(k * angle), radius * np.cos(k * angle)]
    return np.array(rows, np.float32)


_TONNETZ = _tonnetz_basis()
#: Spectral-contrast band edges in Hz (6 octave bands above 200 Hz plus the band below).
_CONTRAST_EDGES = (0.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 6400.0)


def _spectral_contrast(power: np.ndarray, cfg: AudioFeatureConfig, quantile: float = 0.02
                       ) -> np.ndarray:
    """(frames, 7) peak-minus-valley in dB per band (mean of the top / bottom quantile).

    Bands hold the bins ``lo <= f < hi``; librosa's start one bin lower and clamp at 80 dB.
    """
    mag = np.sqrt(power)
    freqs = np.fft.rfftfreq(cfg.n_fft, 1.0 / cfg.sample_rate)
    edges = list(_CONTRAST_EDGES) + [cfg.sample_rate / 2 + 1.0]
    out = np.zeros((mag.shape[0], N_CONTRAST), np.float32)
    for b in range(N_CONTRAST):
        band = np.sort(mag[:, (freqs >= edges[b]) & (freqs < edges[b + 1])], axis=1)
        if band.shape[1] == 0:
            continue
        k = max(1, int(round(quantile * band.shape[1])))
        peak, valley = band[:, -k:].mean(axis=1), band[:, :k].mean(axis=1)
        out[:, b] = 10.0 * (np.log10(peak + 1e-10) - np.log10(valley + 1e-10))
    return out


def _mel_chroma(power: np.ndarray,
                cfg: AudioFeatureConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(log-mel dB floored, MFCC, chroma) per frame from STFT power (frames, bins)."""
    mel = power @ mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels).T
    logmel = 10.0 * np.log10(np.maximum(mel, 1e-12))
    logmel = np.maximum(logmel, logmel.max() - cfg.floor_db)
    mfcc = dct(logmel, type=2, norm="ortho", axis=1)[:, :cfg.n_mfcc]
    chroma = power @ chroma_filterbank(cfg.sample_rate, cfg.n_fft).T
    chroma = chroma / np.maximum(chroma.max(axis=1, keepdims=True), 1e-10)
    return logmel, mfcc, chroma


def frame_features(x: np.ndarray, cfg: AudioFeatureConfig) -> np.ndarray:
    """Mono audio -> (n_mfcc + 12 + n_mels, n_frames): MFCC, chroma, log-mel blocks over time."""
    logmel, mfcc, chroma = _mel_chroma(power_spectrum(x, cfg), cfg)
    segments = np.array_split(np.arange(logmel.shape[0]), cfg.n_frames)
    blocks = []
    for block in (mfcc, chroma, logmel):
        pooled = np.stack([block[s].mean(axis=0) for s in segments], axis=1)  # (dims, n_frames)
        blocks.append(_standardise(pooled))
    return np.concatenate(blocks, axis=0)


def summary_features(x: np.ndarray, cfg: AudioFeatureConfig) -> np.ndarray:
    """Mono audio -> (n_mfcc + 25,) time means of MFCC, chroma, spectral contrast, tonnetz."""
    power = power_spectrum(x, cfg)
    _, mfcc, chroma = _mel_chroma(power, cfg)
    contrast = _spectral_contrast(power, cfg)
    norm = chroma / np.maximum(chroma.sum(axis=1, keepdims=True), 1e-10)
    tonnetz = norm @ _TONNETZ.T
    return np.concatenate([_standardise(mfcc.mean(axis=0)), chroma.mean(axis=0),
                           contrast.mean(axis=0) / 20.0, tonnetz.mean(axis=0)]).astype(np.float32)


_KIND_FUNCTIONS = {"spectrogram": spectrogram, "frame_features": frame_features,
                   "summary_features": summary_features}


def audio_features(samples: np.ndarray, sample_rate: int,
                   cfg: AudioFeatureConfig = AudioFeatureConfig()) -> np.ndarray:
    """Any-rate (n,) / (n, ch) float audio -> the model's features of ``cfg.kind`` (one window)."""
    return _KIND_FUNCTIONS[cfg.kind](resample(to_mono(samples), sample_rate, cfg.sample_rate), cfg)
