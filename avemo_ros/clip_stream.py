"""A decoded clip as the stream a camera and a microphone deliver: stamped frames, audio chunks.

The one place where clip times become header stamps (no ROS imports): the file_source
schedule (:mod:`avemo_ros.playback`), bag timelines (:mod:`avemo_ros.bags.timeline`) and
the bench publisher take their streams from :func:`clip_events`, and so should every other
stream made from a clip (windows for training and tests), so that all share one rule:

* frame ``i``: ``stamp_ns = start_ns + round(frame_times[i] * 1e9)``, due at its stamp;
* audio chunk whose first sample is ``s`` and whose last is ``e - 1``:
  ``stamp_ns = start_ns + round(s * 1e9 / rate)``, due at the end of the chunk,
  ``start_ns + round(e * 1e9 / rate)``, when a microphone has captured it all.

Events come out in due order (audio before video on equal due times).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import numpy as np

__all__ = [
    "AudioEvent",
    "ClipStreamError",
    "Event",
    "VideoEvent",
    "chunk_length",
    "clip_audio",
    "clip_events",
    "clip_span_ns",
    "clips_events",
    "frame_offsets_ns",
    "samples_to_ns",
]

NS = 1_000_000_000


class ClipStreamError(ValueError):
    """A clip cannot be turned into a stream (inconsistent arrays, bad settings)."""


@dataclass(frozen=True)
class VideoEvent:
    """A camera frame: stamped at its presentation time, due then."""

    stamp_ns: int  # start_ns + media time of the frame
    rgb: np.ndarray  # (H, W, 3) uint8 RGB, a view into the clip (do not modify)
    item: int  # playlist / clip index
    index: int  # frame index within the clip
    due_ns: int  # when it is due (clip_events: the stamp; MediaPlayback: elapsed media time)


@dataclass(frozen=True)
class AudioEvent:
    """An audio chunk: stamped at its first sample, due at its end."""

    stamp_ns: int  # start_ns + media time of the first sample
    samples: np.ndarray  # (n, channels) float32 in [-1, 1], a view into the clip audio
    sample_rate: int
    item: int  # playlist / clip index
    first_sample: int  # index of the first sample within the (resampled) clip audio
    due_ns: int  # when it is due: the end of the chunk (same clock as due_ns of frames)


Event = Union[VideoEvent, AudioEvent]


def samples_to_ns(n: int, rate: int) -> int:
    """Duration of ``n`` samples at ``rate`` Hz in ns, rounded to nearest (exact integers)."""
    return (int(n) * NS + int(rate) // 2) // int(rate)


def frame_offsets_ns(frame_times: Any) -> np.ndarray:
    """Frame times (s) -> int64 ns offsets, rounded to nearest.

    Kept in order: a slightly negative or repeated decoder time is clamped to the one before
    (never below 0). Raises :class:`ClipStreamError` for non-finite times.
    """
    times = np.asarray(frame_times, dtype=np.float64).reshape(-1)
    if times.size and not np.all(np.isfinite(times)):
        raise ClipStreamError("non-finite frame times")
    ns = np.rint(times * NS).astype(np.int64)
    return np.maximum.accumulate(np.maximum(ns, 0)) if ns.size else ns


def chunk_length(rate: int, chunk_s: float = 0.032, chunk_samples: Optional[int] = None) -> int:
    """Samples per audio chunk: ``chunk_samples`` if given, else ``round(chunk_s * rate)``."""
    if chunk_samples is not None:
        if int(chunk_samples) <= 0:
            raise ClipStreamError(f"chunk_samples must be > 0, got {chunk_samples}")
        return int(chunk_samples)
    if not (np.isfinite(chunk_s) and chunk_s > 0):
        raise ClipStreamError(f"chunk_s must be > 0, got {chunk_s}")
    return max(1, int(round(float(chunk_s) * int(rate)))) if int(rate) > 0 else 1


def clip_audio(clip: Any, audio_rate: Optional[int] = None) -> tuple[np.ndarray, int]:
    """(audio as (n, channels) float32, its rate) of a clip, resampled to ``audio_rate``.

    Resampled audio is clipped to [-1, 1]. A clip without audio gives ``((0, 1), rate)``.
    """
    audio = (np.zeros((0, 1), np.float32) if clip.audio is None
             else np.asarray(clip.audio, dtype=np.float32))
    if audio.ndim == 1:
        audio = audio[:, None]
    rate = int(clip.sample_rate or 0)
    if audio.shape[0] and rate <= 0:
        raise ClipStreamError(f"audio without a valid sample rate ({clip.sample_rate})")
    if audio_rate is not None and int(audio_rate) <= 0:
        raise ClipStreamError(f"audio_rate must be > 0 or None, got {audio_rate}")
    if audio.shape[0] and audio_rate and rate != int(audio_rate):
        from .audio_features import resample  # scipy: only when resampling

        audio = np.clip(resample(audio, rate, int(audio_rate)), -1.0, 1.0).astype(np.float32)
        rate = int(audio_rate)
    return audio, rate


def clip_span_ns(clip: Any, audio_rate: Optional[int] = None) -> int:
    """Length of a clip on the stream's timeline (0 for a clip with neither frames nor audio).

    The longest of ``clip.duration`` (when the clip has one), the audio (at ``audio_rate``
    when resampling) and the last frame time plus one nanosecond.
    """
    span = 0
    duration = getattr(clip, "duration", None)
    if duration is not None and np.isfinite(duration) and duration > 0:
        span = int(round(float(duration) * NS))
    n_audio = int(np.asarray(clip.audio).shape[0]) if clip.audio is not None else 0
    if n_audio and int(clip.sample_rate or 0) > 0:
        rate = int(clip.sample_rate)
        n = n_audio if not audio_rate else -(-n_audio * int(audio_rate) // rate)
        span = max(span, samples_to_ns(n, int(audio_rate or rate)))
    frames = frame_offsets_ns(clip.frame_times)
    if frames.size:
        span = max(span, int(frames[-1]) + 1)
    return span


def clip_events(clip: Any, start_ns: int = 0, *, chunk_s: float = 0.032,
                chunk_samples: Optional[int] = None, audio_rate: Optional[int] = None,
                whole_chunks: bool = False, item: int = 0) -> list[Event]:
    """The stream of one clip starting at ``start_ns``: frames and audio chunks in due order.

    ``clip``: ``frames`` (N, H, W, 3), ``frame_times`` (N,) s, ``audio`` (n,) or
    (n, channels), ``sample_rate`` (an :class:`avemo_ros.media.MediaClip` or alike).
    Chunks hold ``chunk_samples`` samples (default ``round(chunk_s * rate)``); the last one
    is shorter unless ``whole_chunks`` drops it. ``audio_rate`` resamples the audio first.
    Stamps and due times follow the module's rule; ``item`` is copied into every event.
    """
    frames = clip.frames
    frame_ns = frame_offsets_ns(clip.frame_times)
    if len(frames) != frame_ns.shape[0]:
        raise ClipStreamError(f"{len(frames)} frames but {frame_ns.shape[0]} frame times")
    audio, rate = clip_audio(clip, audio_rate)
    start_ns = int(start_ns)
    keyed: list[tuple[int, int, int, Event]] = [
        (int(t), 1, i, VideoEvent(start_ns + int(t), frames[i], item, i, start_ns + int(t)))
        for i, t in enumerate(frame_ns)]
    n = audio.shape[0]
    if n:
        step = chunk_length(rate, chunk_s, chunk_samples)
        last = n - step if whole_chunks else n - 1
        for s in range(0, last + 1, step):
            e = min(s + step, n)
            due = samples_to_ns(e, rate)
            keyed.append((due, 0, s, AudioEvent(start_ns + samples_to_ns(s, rate), audio[s:e],
                                                rate, item, s, start_ns + due)))
    keyed.sort(key=lambda k: k[:3])
    return [k[3] for k in keyed]


def clips_events(clips: Sequence[Any], start_ns: int = 0, *, gap_ns: int = 0,
                 **kwargs: Any) -> list[Event]:
    """Clips end to end (each :func:`clip_span_ns` long, ``gap_ns`` apart) as one stream.

    ``item`` of each event is the clip's index; ``kwargs`` as for :func:`clip_events`.
    """
    out: list[Event] = []
    t = int(start_ns)
    for i, clip in enumerate(clips):
        out += clip_events(clip, t, item=i, **kwargs)
        t += clip_span_ns(clip, kwargs.get("audio_rate")) + int(gap_ns)
    return out
