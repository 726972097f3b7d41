"""Feature extraction for training: every clip through the node's own window + feature code.

Features are cached in an ``.npz`` keyed by the preprocessing parameters and the clip
list, so changing either re-extracts and nothing stale is ever trained on.
"""
from __future__ import annotations

import hashlib
import json
import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from avemo_ros.audio_features import AudioFeatureConfig
from avemo_ros.estimator import FeatureExtractor
from avemo_ros.face_frames import VideoFeatureConfig
from avemo_ros.media import read_media
from avemo_ros.window import windows_from_media

log = logging.getLogger(__name__)


@dataclass
class FeatureSet:
    """Per-window network inputs and metadata (N windows)."""

    spectrograms: np.ndarray  # (N, bins, frames) float16
    faces: np.ndarray  # (N, n_frames, H, W) float16
    has_audio: np.ndarray  # (N,) bool
    has_face: np.ndarray  # (N,) bool
    labels: np.ndarray  # (N,) int64 index into the label set
    groups: np.ndarray  # (N,) int64 speaker / actor id (splits are by group only)
    clip: np.ndarray  # (N,) int64 index of the source clip

    def subset(self, mask: np.ndarray) -> "FeatureSet":
        return FeatureSet(**{k: v[mask] for k, v in vars(self).items()})


def _clip_features(args) -> list[tuple[np.ndarray, np.ndarray, bool, bool]]:
    path, audio_cfg, video_cfg, hop_s = args
    extractor = _worker_extractor(audio_cfg, video_cfg)
    clip = read_media(path)
    windows = windows_from_media(clip.frames, clip.frame_times, clip.audio, clip.sample_rate,
                                 window_s=audio_cfg.window_s, hop_s=hop_s,
                                 n_frames=video_cfg.n_frames)
    out = []
    for w in windows:
        f = extractor.features(w)
        spec = f.audio if f.audio is not None else np.zeros(audio_cfg.shape, np.float32)
        faces = f.faces.frames if f.faces.frames is not None else np.zeros(video_cfg.shape, np.float32)
        out.append((spec.astype(np.float16), faces.astype(np.float16),
                    f.audio is not None, f.faces.face_found))
    return out


_EXTRACTOR: dict = {}


def _worker_extractor(audio_cfg, video_cfg) -> FeatureExtractor:
    key = (audio_cfg, video_cfg)
    if key not in _EXTRACTOR:
        _EXTRACTOR[key] = FeatureExtractor(audio_cfg, video_cfg)
    return _EXTRACTOR[key]


def cache_key(paths: Sequence[Path], audio_cfg: AudioFeatureConfig,
              video_cfg: VideoFeatureConfig, hop_s: float) -> str:
    """Hash of the preprocessing parameters and the clip list (names and sizes)."""
    h = hashlib.sha256(json.dumps([audio_cfg.to_dict(), video_cfg.to_dict(), hop_s]).encode())
    for p in paths:
        h.update(f"{Path(p).name}:{Path(p).stat().st_size}".encode())
    return h.hexdigest()[:16]


def extract_features(paths: Sequence[Path], labels: Sequence[int], groups: Sequence[int], *,
                     audio_cfg: AudioFeatureConfig, video_cfg: VideoFeatureConfig,
                     hop_s: float = 0.5, cache_dir: Path | None = None, workers: int = 2
                     ) -> FeatureSet:
    """Windows of every clip -> FeatureSet, from the cache when it is there."""
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"features-{cache_key(paths, audio_cfg, video_cfg, hop_s)}.npz"
        if cache.is_file():
            log.info("features from cache %s", cache)
            with np.load(cache) as z:
                return FeatureSet(**{k: z[k] for k in z.files})
    jobs = [(p, audio_cfg, video_cfg, hop_s) for p in paths]
    rows: list = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = pool.map(_clip_features, jobs, chunksize=4)
        for i, windows in enumerate(tqdm(results, total=len(jobs), desc="features", unit="clip")):
            rows.extend((i, w) for w in windows)
    fs = FeatureSet(
        spectrograms=np.stack([w[0] for _, w in rows]),
        faces=np.stack([w[1] for _, w in rows]),
        has_audio=np.array([w[2] for _, w in rows]),
        has_face=np.array([w[3] for _, w in rows]),
        labels=np.array([labels[i] for i, _ in rows], dtype=np.int64),
        groups=np.array([groups[i] for i, _ in rows], dtype=np.int64),
        clip=np.array([i for i, _ in rows], dtype=np.int64))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **vars(fs))
        log.info("features cached in %s", cache)
    return fs
