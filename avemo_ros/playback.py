"""Real-time playback schedule for decoded media clips (no ROS imports).

:class:`MediaPlayback` turns one clip or a playlist into time-stamped video frames and
audio chunks. The caller supplies the elapsed *media* time (wall or ROS clock time
since the start, times the playback rate) and publishes whatever :meth:`MediaPlayback.poll`
says is due. Stamps are ``start_ns`` plus media time and keep increasing across
playlist items and loops.

Timing model (like a live camera and microphone): a frame is due at its presentation
time; an audio chunk is due when its *last* sample has been "captured", i.e. at its end
time, while its stamp is the time of its first sample.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import numpy as np

from .audio_features import resample

__all__ = [
    "AudioEvent",
    "MediaPlayback",
    "PlaybackError",
    "VideoEvent",
    "clip_span_ns",
]

_NS_PER_S = 1_000_000_000


class PlaybackError(ValueError):
    """Invalid playlist or playback settings."""


@dataclass(frozen=True)
class VideoEvent:
    """A video frame due for publishing."""

    stamp_ns: int  # start_ns + media time of the frame
    rgb: np.ndarray  # (H, W, 3) uint8 RGB, a view into the clip (do not modify)
    item: int  # playlist index
    index: int  # frame index within the clip
    due_ns: int  # elapsed media time at which it is due


@dataclass(frozen=True)
class AudioEvent:
    """An audio chunk due for publishing."""

    stamp_ns: int  # start_ns + media time of the first sample
    samples: np.ndarray  # (n, channels) float32 in [-1, 1], a view into the clip
    sample_rate: int
    item: int  # playlist index
    first_sample: int  # index of the first sample within the (resampled) clip audio
    due_ns: int  # elapsed media time at which it is due (end of the chunk)


Event = Union[VideoEvent, AudioEvent]


def _samples_to_ns(n: int, rate: int) -> int:
    """Duration of ``n`` samples at ``rate`` Hz in ns, rounded to nearest."""
    return (int(n) * _NS_PER_S + rate // 2) // rate


def _frame_ns(clip: Any) -> np.ndarray:
    times = np.asarray(clip.frame_times, dtype=np.float64).reshape(-1)
    if times.size and not np.all(np.isfinite(times)):
        raise PlaybackError(f"clip {getattr(clip, 'path', '')!r}: non-finite frame times")
    ns = np.rint(times * _NS_PER_S).astype(np.int64)
    # Keep frames in order even if a decoder reports a slightly negative or repeated pts.
    return np.maximum.accumulate(np.maximum(ns, 0)) if ns.size else ns


def clip_span_ns(clip: Any, audio_rate: Optional[int] = None) -> int:
    """Length of a clip on the playback timeline (0 for a clip with neither frames nor audio).

    The longer of ``clip.duration``, the audio (at ``audio_rate`` when resampling) and
    the last frame time plus one nanosecond.
    """
    span = 0
    duration = getattr(clip, "duration", None)
    if duration is not None and np.isfinite(duration) and duration > 0:
        span = int(round(float(duration) * _NS_PER_S))
    n_audio = int(np.asarray(clip.audio).shape[0]) if clip.audio is not None else 0
    if n_audio and int(clip.sample_rate) > 0:
        rate = int(clip.sample_rate)
        n = n_audio if not audio_rate else -(-n_audio * int(audio_rate) // rate)
        span = max(span, _samples_to_ns(n, int(audio_rate or rate)))
    frames = _frame_ns(clip)
    if frames.size:
        span = max(span, int(frames[-1]) + 1)
    return span


@dataclass
class _Item:
    frames: np.ndarray
    frame_ns: np.ndarray
    audio: np.ndarray
    rate: int
    chunk: int
    span_ns: int
    path: str


class MediaPlayback:
    """Schedule of video frames and audio chunks for a clip or playlist.

    ``clips``: a MediaClip-like object (``frames``, ``frame_times``, ``audio``,
    ``sample_rate``, optional ``duration``/``path``) or a sequence of them.
    ``chunk_s``: audio chunk length (the last chunk of a clip may be shorter; chunks
    never straddle clips). ``audio_rate``: resample audio to this rate (None: native).
    """

    def __init__(
        self,
        clips: Union[Any, Sequence[Any]],
        start_ns: int = 0,
        *,
        chunk_s: float = 0.032,
        loop: bool = False,
        audio_rate: Optional[int] = None,
    ) -> None:
        playlist = list(clips) if isinstance(clips, (list, tuple)) else [clips]
        if not playlist:
            raise PlaybackError("empty playlist")
        if not (np.isfinite(chunk_s) and chunk_s > 0):
            raise PlaybackError(f"chunk_s must be > 0, got {chunk_s}")
        if audio_rate is not None and int(audio_rate) <= 0:
            raise PlaybackError(f"audio_rate must be > 0 or None, got {audio_rate}")
        self.start_ns = int(start_ns)
        self.chunk_s = float(chunk_s)
        self.audio_rate = int(audio_rate) if audio_rate else None
        self.loop = bool(loop)
        self._items = [self._prepare(clip, i) for i, clip in enumerate(playlist)]
        self._pos = 0  # playlist index
        self._passes = 0  # completed passes over the playlist (loop)
        self._offset_ns = 0  # media time of the current item's start
        self._frame_i = 0
        self._sample_i = 0
        self._finished = False

    def _prepare(self, clip: Any, index: int) -> _Item:
        path = str(getattr(clip, "path", "") or f"item {index}")
        frames = np.asarray(clip.frames)
        frame_ns = _frame_ns(clip)
        if frames.shape[0] != frame_ns.shape[0]:
            raise PlaybackError(f"{path}: {frames.shape[0]} frames but {frame_ns.shape[0]} "
                                "frame times")
        audio = (np.zeros((0, 1), np.float32) if clip.audio is None
                 else np.asarray(clip.audio, dtype=np.float32))
        if audio.ndim == 1:
            audio = audio[:, None]
        rate = int(clip.sample_rate or 0)
        if audio.shape[0] and rate <= 0:
            raise PlaybackError(f"{path}: audio without a valid sample rate ({clip.sample_rate})")
        if audio.shape[0] and self.audio_rate and rate != self.audio_rate:
            audio = np.clip(resample(audio, rate, self.audio_rate), -1.0, 1.0)
            rate = self.audio_rate
        span = clip_span_ns(clip, self.audio_rate)
        if span <= 0:
            raise PlaybackError(f"{path}: clip has neither video frames nor audio")
        chunk = max(1, int(round(self.chunk_s * rate))) if rate > 0 else 1
        return _Item(frames, frame_ns, audio, rate, chunk, span, path)

    # -------------------------------------------------------------------- state

    @property
    def finished(self) -> bool:
        """True once the playlist has ended (never while looping)."""
        return self._finished

    @property
    def item(self) -> int:
        """Index of the playlist item being played."""
        return self._pos

    @property
    def passes(self) -> int:
        """Number of completed passes over the playlist."""
        return self._passes

    @property
    def paths(self) -> list[str]:
        """Path (or ``item <i>``) of each playlist item."""
        return [it.path for it in self._items]

    @property
    def sample_rates(self) -> list[int]:
        """Audio rate of each item after resampling (0 without audio)."""
        return [it.rate if it.audio.shape[0] else 0 for it in self._items]

    @property
    def channels(self) -> list[int]:
        """Audio channel count of each item (0 without audio)."""
        return [int(it.audio.shape[1]) if it.audio.shape[0] else 0 for it in self._items]

    def span_ns(self, item: int) -> int:
        """Timeline length of playlist item ``item``."""
        return self._items[item].span_ns

    @property
    def playlist_span_ns(self) -> int:
        """Timeline length of one pass over the playlist."""
        return sum(it.span_ns for it in self._items)

    def _next_local(self) -> Optional[tuple[int, str]]:
        """(due time within the current item, kind) of its next event, or None."""
        it = self._items[self._pos]
        candidates = []
        if self._frame_i < it.frame_ns.shape[0]:
            candidates.append((int(it.frame_ns[self._frame_i]), "video"))
        if self._sample_i < it.audio.shape[0]:
            end = min(self._sample_i + it.chunk, it.audio.shape[0])
            candidates.append((_samples_to_ns(end, it.rate), "audio"))
        return min(candidates) if candidates else None  # "audio" < "video" on ties

    @property
    def next_due_ns(self) -> Optional[int]:
        """Elapsed media time at which :meth:`poll` next has something to do (None: finished)."""
        if self._finished:
            return None
        nxt = self._next_local()
        if nxt is None:
            return self._offset_ns + self._items[self._pos].span_ns
        return self._offset_ns + nxt[0]

    # -------------------------------------------------------------------- polling

    def poll(self, elapsed_ns: int) -> list[Event]:
        """Events due by ``elapsed_ns`` of media time, in due order; advances the schedule."""
        events: list[Event] = []
        elapsed_ns = int(elapsed_ns)
        while not self._finished:
            it = self._items[self._pos]
            nxt = self._next_local()
            if nxt is None:  # current item exhausted: move on once its span has elapsed
                end = self._offset_ns + it.span_ns
                if elapsed_ns < end:
                    break
                self._advance(end)
                continue
            local, kind = nxt
            due = self._offset_ns + local
            if due > elapsed_ns:
                break
            base = self.start_ns + self._offset_ns
            if kind == "video":
                i = self._frame_i
                events.append(VideoEvent(base + int(it.frame_ns[i]), it.frames[i], self._pos, i,
                                         due))
                self._frame_i += 1
            else:
                s = self._sample_i
                e = min(s + it.chunk, it.audio.shape[0])
                stamp = base + _samples_to_ns(s, it.rate)
                events.append(AudioEvent(stamp, it.audio[s:e], it.rate, self._pos, s, due))
                self._sample_i = e
        return events

    def _advance(self, end_ns: int) -> None:
        self._offset_ns = end_ns
        self._frame_i = self._sample_i = 0
        if self._pos + 1 < len(self._items):
            self._pos += 1
        elif self.loop:
            self._pos = 0
            self._passes += 1
        else:
            self._finished = True
