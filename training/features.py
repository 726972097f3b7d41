"""Feature extraction for training: every clip through the node's own streaming pipeline.

Each clip is decoded (only its segment), streamed as a camera and a microphone would
deliver it (:func:`avemo_ros.clip_stream.clip_events`) into the same
:class:`~avemo_ros.pipeline.StreamingPipeline` the node and offline evaluation run, with a
``FeatureExtractor`` in place of the networks: the same windows, frame selection, face
detection, ``min_video_frames`` rule and features as at run time. Results are
cached one file per clip under ``<cache_dir>/features-<hash of the preprocessing>/``;
a file's name carries a hash of the clip's identity (paths, sizes, modification times,
segment), so changed parameters or media miss the cache, an interrupted extraction
resumes where it stopped, and new clips are the only ones extracted. Labels, groups and
the clip order come from the clip list at load time, never from the cache.

With a speech gate (the node's Silero VAD, :mod:`avemo_ros.speech_gate`; training runs
use it by default) each window's speech fraction is cached with its features, and a
window whose fraction is below the gate's ``min_speech_fraction`` has no audio
(``has_audio`` False): the audio networks learn only from windows the node would give
them.
"""
from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import re
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from tqdm import tqdm

from avemo_ros.audio_features import AudioFeatureConfig
from avemo_ros.clip_stream import clip_events
from avemo_ros.estimator import FeatureExtractor
from avemo_ros.face_frames import VideoFeatureConfig
from avemo_ros.health import Health
from avemo_ros.input_problems import ProblemLog
from avemo_ros.media import MediaClip, MediaError
from avemo_ros.pipeline import ESTIMATED, PipelineConfig, StreamingPipeline
from avemo_ros.speech_gate import MODEL_SHA256, SpeechGate, SpeechGateConfig, default_model_path
from avemo_ros.tools.fetch_weights import sha256_of
from avemo_ros.stream_events import from_clip_events
from avemo_ros.window import NS

from .datasets import Clip, read_clip

log = logging.getLogger(__name__)

#: Bump when the meaning of cached features changes without a parameter changing.
CACHE_VERSION = 5  # 5: faces found by the pipeline's tracker (primary face), not per frame


@dataclass
class FeatureSet:
    """Per-window network inputs and metadata (N windows)."""

    audio: np.ndarray  # (N, *audio_cfg.shape) float16 audio features (zeros without audio)
    video: np.ndarray  # (N, *video_cfg.shape) float16 face stacks (zeros without a face)
    has_audio: np.ndarray  # (N,) bool
    has_face: np.ndarray  # (N,) bool
    labels: np.ndarray  # (N,) int64 index into the dataset's labels
    groups: np.ndarray  # (N,) int64 actor / session (splits are by group only)
    clip: np.ndarray  # (N,) int64 index into the clip list
    start: np.ndarray  # (N,) float64 window start, seconds from the clip's (segment's) start
    speech_fraction: np.ndarray  # (N,) float32 the gate's share of speech (NaN: no gate)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, mask: np.ndarray) -> "FeatureSet":
        """The windows selected by a boolean mask or an index array."""
        return FeatureSet(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})


@dataclass
class ClipWindows:
    """The windows of one clip (n windows)."""

    audio: np.ndarray  # (n, *audio shape) float16
    video: np.ndarray  # (n, *video shape) float16
    has_audio: np.ndarray  # (n,) bool
    has_face: np.ndarray  # (n,) bool
    start: np.ndarray  # (n,) float64 seconds
    speech_fraction: np.ndarray  # (n,) float32 (NaN: no gate ran, or no audio)

    def __len__(self) -> int:
        return len(self.start)


_GATES: dict = {}  # one loaded gate per configuration and process


def _gate(config: Optional[SpeechGateConfig]) -> Optional[SpeechGate]:
    if config is None:
        return None
    if config not in _GATES:
        _GATES[config] = SpeechGate(config)
    return _GATES[config]


def _pad_to_window(media: MediaClip, window_s: float) -> MediaClip:
    """A clip shorter than one window, extended to one: silence after its audio, its
    last frame held until the window's end (what a live window around the utterance
    would hold, minus the background)."""
    a_end = media.audio_duration
    v_end = float(media.frame_times[-1]) if len(media.frame_times) else 0.0
    if max(a_end, v_end) >= window_s:
        return media
    audio, frames, times = media.audio, media.frames, media.frame_times
    if media.sample_rate > 0 and audio.shape[0]:
        n = int(np.ceil(window_s * media.sample_rate))
        pad = np.zeros((n - audio.shape[0], audio.shape[1]), audio.dtype)
        audio = np.concatenate([audio, pad])
    if len(times):
        frames = np.concatenate([frames, frames[-1:]])
        times = np.append(times, window_s)
    return MediaClip(frames=frames, frame_times=times, audio=audio,
                     sample_rate=media.sample_rate, path=media.path)


def clip_windows(clip: Clip, audio_cfg: AudioFeatureConfig, video_cfg: VideoFeatureConfig,
                 hop_s: float, pad_short: bool = True, min_video_frames: int = 0,
                 speech_gate: Optional[SpeechGateConfig] = None) -> ClipWindows:
    """Decode one clip and compute the features of each of its windows.

    A clip without video gives windows with ``has_face`` False, one without audio
    windows with ``has_audio`` False (windows with neither are left out);
    ``pad_short`` extends a clip shorter than one window to one window (else it has none);
    ``speech_gate``: record each window's speech fraction (its audio features are kept
    whatever the gate says). Raises MediaError when it cannot be read.
    """
    media = read_clip(clip)
    if pad_short:
        media = _pad_to_window(media, audio_cfg.window_s)
    # errors (a window whose computation failed) are warnings: a silent failure would look
    # like a clip without windows
    problems = ProblemLog(Health(), lambda level, text: log.log(
        logging.WARNING if level >= 2 else logging.DEBUG, "%s: %s", clip.id, text))
    pipeline = StreamingPipeline(FeatureExtractor(audio_cfg, video_cfg), problems,
                                 PipelineConfig(hop_s=hop_s, grace_s=1.0, max_faces=1,
                                                min_video_frames=min_video_frames),
                                 _gate(speech_gate))
    outcomes = []
    for event in from_clip_events(clip_events(media)):
        pipeline.push(event)
        outcomes += pipeline.run()
    outcomes += pipeline.flush()
    feats = [o.result for o in outcomes if o.status == ESTIMATED]
    n = len(feats)
    out = ClipWindows(audio=np.zeros((n, *audio_cfg.shape), np.float16),
                      video=np.zeros((n, *video_cfg.shape), np.float16),
                      has_audio=np.zeros(n, bool), has_face=np.zeros(n, bool),
                      start=np.array([f.start_ns / NS for f in feats], np.float64),
                      speech_fraction=np.array([np.nan if f.speech_fraction is None
                                                else f.speech_fraction for f in feats],
                                               np.float32).reshape(n))
    for i, f in enumerate(feats):
        if f.audio is not None:
            out.audio[i] = f.audio
            out.has_audio[i] = True
        if f.faces.frames is not None:
            out.video[i] = f.faces.frames
            out.has_face[i] = f.faces.face_found
    return out


def preprocessing_key(audio_cfg: AudioFeatureConfig, video_cfg: VideoFeatureConfig,
                      hop_s: float, pad_short: bool = True,
                      speech_gate: Optional[SpeechGateConfig] = None) -> str:
    """Hash of everything that shapes a clip's features besides the clip itself."""
    params = _params(audio_cfg, video_cfg, hop_s, pad_short, speech_gate)
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def _params(audio_cfg, video_cfg, hop_s, pad_short, speech_gate=None) -> dict:
    # The cached fraction depends on the model and the chunk threshold, not on
    # min_speech_fraction (applied at load time).
    gate = None
    if speech_gate is not None:
        model = MODEL_SHA256 if speech_gate.verify_sha256 else \
            sha256_of(speech_gate.model_path or default_model_path())
        gate = {"model": model, "threshold": speech_gate.threshold}
    return {"version": CACHE_VERSION, "audio": audio_cfg.to_dict(), "video": video_cfg.to_dict(),
            "hop_s": float(hop_s), "pad_short": bool(pad_short), "speech_gate": gate}


def clip_key(clip: Clip) -> str:
    """Hash of a clip's identity: its files (absolute path, size, modification time)
    and segment. OSError when a file is missing."""
    parts = []
    for path in (clip.video_path, clip.audio_path):
        if path is None:
            parts.append(None)
        else:
            st = os.stat(path)
            parts.append([os.path.abspath(path), st.st_size, st.st_mtime_ns])
    parts += [clip.start_s, clip.end_s]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


class FeatureCache:
    """One ``.npz`` per clip under ``root/features-<preprocessing hash>/``."""

    def __init__(self, root: os.PathLike | str, audio_cfg: AudioFeatureConfig,
                 video_cfg: VideoFeatureConfig, hop_s: float, pad_short: bool = True,
                 speech_gate: Optional[SpeechGateConfig] = None):
        key = preprocessing_key(audio_cfg, video_cfg, hop_s, pad_short, speech_gate)
        self.directory = Path(root) / f"features-{key}"
        self._params = _params(audio_cfg, video_cfg, hop_s, pad_short, speech_gate)
        self._shapes = (tuple(audio_cfg.shape), tuple(video_cfg.shape))

    def path(self, clip: Clip) -> Path:
        """Where the clip's windows are (or would be) cached; OSError for a missing file."""
        return self.directory / f"{_UNSAFE.sub('_', clip.id)[:80]}-{clip_key(clip)}.npz"

    def load(self, clip: Clip) -> Optional[ClipWindows]:
        """The cached windows of a clip, or None (not cached, or an unreadable file,
        which is removed)."""
        path = self.path(clip)
        if not path.is_file():
            return None
        try:
            with np.load(path) as z:
                cw = ClipWindows(**{f.name: z[f.name] for f in fields(ClipWindows)})
        except (OSError, ValueError, KeyError, EOFError) as e:
            log.warning("unreadable feature cache %s (%s): extracting again", path, e)
            path.unlink(missing_ok=True)
            return None
        if (cw.audio.shape[1:], cw.video.shape[1:]) != self._shapes:
            log.warning("feature cache %s has shapes %s, expected %s: extracting again", path,
                        (cw.audio.shape[1:], cw.video.shape[1:]), self._shapes)
            return None
        return cw

    def save(self, clip: Clip, windows: ClipWindows) -> Path:
        """Write atomically (a reader never sees half a file)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        params = self.directory / "params.json"
        if not params.is_file():
            _atomic_write(params, json.dumps(self._params, indent=2).encode())
        path = self.path(clip)
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **vars(windows))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _extract_job(args) -> tuple[int, Optional[ClipWindows], Optional[str]]:
    """Worker: (index, windows or None, error or None); caches the windows when asked."""
    i, clip, audio_cfg, video_cfg, hop_s, pad_short, cache_root, gate = args
    try:
        windows = clip_windows(clip, audio_cfg, video_cfg, hop_s, pad_short, speech_gate=gate)
    except (MediaError, OSError, ValueError) as e:
        return i, None, str(e)
    if cache_root is not None:
        try:
            FeatureCache(cache_root, audio_cfg, video_cfg, hop_s, pad_short,
                         gate).save(clip, windows)
        except OSError as e:
            log.warning("cannot cache the features of %s: %s", clip.id, e)
    return i, windows, None


def _init_worker() -> None:
    import cv2
    cv2.setNumThreads(1)  # one clip per process; OpenCV's own threads would oversubscribe


def extract_features(clips: Sequence[Clip], labels: Sequence[str], *,
                     audio_cfg: AudioFeatureConfig, video_cfg: VideoFeatureConfig,
                     hop_s: float = 0.5, cache_dir: os.PathLike | str | None = None,
                     workers: int = 2, pad_short: bool = True, progress: bool = True,
                     speech_gate: Optional[SpeechGateConfig] = None) -> FeatureSet:
    """Windows of every clip -> FeatureSet, from the cache where it has them.

    ``labels``: the dataset's ordered label list (``FeatureSet.labels`` indexes it).
    ``workers`` > 1 extracts in that many processes (started by a forkserver, so a
    calling script needs the usual ``if __name__ == "__main__":`` guard). Clips that
    cannot be read are logged and left out (and tried again next time); ValueError when
    no clip gives a window. ``speech_gate``: windows with less speech than its
    ``min_speech_fraction`` get ``has_audio`` False (SpeechGateError: no VAD model).
    """
    label_index = {lbl: k for k, lbl in enumerate(labels)}
    unknown = sorted({c.label for c in clips} - set(label_index))
    if unknown:
        raise ValueError(f"clip labels {unknown} are not in the label list {list(labels)}")
    cache = None
    if cache_dir is not None:
        cache = FeatureCache(cache_dir, audio_cfg, video_cfg, hop_s, pad_short, speech_gate)
    _gate(speech_gate)  # a missing model fails here, before any work
    results: dict[int, ClipWindows] = {}
    errors: dict[int, str] = {}
    todo = []
    for i, clip in enumerate(clips):
        if cache is not None:
            try:
                cached = cache.load(clip)
            except OSError as e:
                errors[i] = str(e)
                continue
            if cached is not None:
                results[i] = cached
                continue
        todo.append(i)
    log.info("features of %d clips: %d from the cache%s, %d to extract", len(clips), len(results),
             f" {cache.directory}" if cache is not None else "", len(todo))
    jobs = [(i, clips[i], audio_cfg, video_cfg, hop_s, pad_short,
             str(cache_dir) if cache is not None else None, speech_gate) for i in todo]
    bar = tqdm(total=len(clips), initial=len(results), desc="features", unit="clip",
               disable=not progress or not todo)
    try:
        if workers <= 1 or len(jobs) <= 1:
            outputs = map(_extract_job, jobs)
            for i, windows, error in outputs:
                _collect(i, windows, error, results, errors)
                bar.update(1)
        else:
            # forkserver: workers forked from a clean server process, never from this
            # one, whose OpenCV / OpenMP / FFmpeg threads can leave a forked child
            # deadlocked on a lock held at fork time.
            ctx = multiprocessing.get_context("forkserver")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                     initializer=_init_worker) as pool:
                futures = [pool.submit(_extract_job, job) for job in jobs]
                for fut in as_completed(futures):
                    _collect(*fut.result(), results, errors)
                    bar.update(1)
    finally:
        bar.close()
    for i, error in sorted(errors.items()):
        log.warning("clip %s left out: %s", clips[i].id, error)
    empty = [clips[i].id for i, w in results.items() if len(w) == 0]
    if empty:
        log.warning("%d clips gave no window (shorter than %.1f s): %s", len(empty),
                    audio_cfg.window_s, empty[:10])
    if errors:
        log.warning("%d of %d clips could not be read", len(errors), len(clips))
    order = sorted(i for i, w in results.items() if len(w))
    if not order:
        raise ValueError(f"no windows from {len(clips)} clips ({len(errors)} unreadable, "
                         f"{len(empty)} too short)")
    counts = [len(results[i]) for i in order]
    n = sum(counts)
    fs = FeatureSet(
        audio=np.empty((n, *audio_cfg.shape), np.float16),
        video=np.empty((n, *video_cfg.shape), np.float16),
        has_audio=np.empty(n, bool), has_face=np.empty(n, bool),
        labels=np.repeat([label_index[clips[i].label] for i in order], counts).astype(np.int64),
        groups=np.repeat([clips[i].group for i in order], counts).astype(np.int64),
        clip=np.repeat(order, counts).astype(np.int64), start=np.empty(n, np.float64),
        speech_fraction=np.empty(n, np.float32))
    at = 0
    for i in order:  # fill in place, freeing each clip's arrays: peak memory ~ one copy
        w = results.pop(i)
        for name in ("audio", "video", "has_audio", "has_face", "start", "speech_fraction"):
            getattr(fs, name)[at:at + len(w)] = getattr(w, name)
        at += len(w)
    if speech_gate is not None:
        voiced = fs.speech_fraction >= speech_gate.min_speech_fraction  # NaN: False
        log.info("speech gate: %d of %d windows with audio hold speech (min fraction %.2f)",
                 int((fs.has_audio & voiced).sum()), int(fs.has_audio.sum()),
                 speech_gate.min_speech_fraction)
        fs.has_audio &= voiced
    return fs


def _collect(i: int, windows: Optional[ClipWindows], error: Optional[str],
             results: dict, errors: dict) -> None:
    if windows is None:
        errors[i] = error or "unknown error"
    else:
        results[i] = windows
