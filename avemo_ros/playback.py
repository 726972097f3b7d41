"""Real-time playback schedule for decoded media clips (no ROS imports).

:class:`MediaPlayback` plays one clip or a playlist as the stream of
:func:`avemo_ros.clip_stream.clip_events`. The caller supplies the elapsed *media* time
(wall or ROS clock time since the start, times the playback rate; see
:mod:`avemo_ros.playback_clock`) and publishes whatever :meth:`MediaPlayback.poll` says is
due. Stamps are ``start_ns`` plus media time and keep increasing across playlist items and
loops.

Timing model (like a live camera and microphone): a frame is due at its presentation
time; an audio chunk is due when its *last* sample has been "captured", i.e. at its end
time, while its stamp is the time of its first sample.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any, Optional, Sequence, Union

import numpy as np

from .clip_stream import (AudioEvent, ClipStreamError, Event, VideoEvent, clip_audio,
                          clip_events, clip_span_ns)

__all__ = [
    "AudioEvent",
    "MediaPlayback",
    "PlaybackError",
    "VideoEvent",
    "clip_span_ns",
]


class PlaybackError(ValueError):
    """Invalid playlist or playback settings."""


@dataclass
class _Item:
    events: list[Event]  # the clip's stream from media time 0 (clip_events)
    rate: int  # audio rate after resampling (0 without audio)
    channels: int  # 0 without audio
    span_ns: int
    path: str


class MediaPlayback:
    """Schedule of video frames and audio chunks for a clip or playlist.

    ``clips``: a MediaClip-like object (``frames``, ``frame_times``, ``audio``,
    ``sample_rate``, optional ``duration``/``path``) or a sequence of them.
    ``chunk_s``: audio chunk length (the last chunk of a clip may be shorter; chunks
    never straddle clips). ``audio_rate``: resample audio to this rate (None: native).
    Events carry ``due_ns`` as elapsed media time since the start of playback.
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
        self._next = 0  # index of the next event of the current item
        self._finished = False

    def _prepare(self, clip: Any, index: int) -> _Item:
        path = str(getattr(clip, "path", "") or f"item {index}")
        try:
            audio, rate = clip_audio(clip, self.audio_rate)
            span = clip_span_ns(clip, self.audio_rate)
            if span <= 0:
                raise PlaybackError(f"{path}: clip has neither video frames nor audio")
            resampled = SimpleNamespace(frames=clip.frames, frame_times=clip.frame_times,
                                        audio=audio, sample_rate=rate)  # resampled once
            events = clip_events(resampled, 0, chunk_s=self.chunk_s, item=index)
        except ClipStreamError as exc:
            raise PlaybackError(f"{path}: {exc}") from exc
        has_audio = audio.shape[0] > 0
        return _Item(events, rate if has_audio else 0,
                     int(audio.shape[1]) if has_audio else 0, span, path)

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
        return [it.rate for it in self._items]

    @property
    def channels(self) -> list[int]:
        """Audio channel count of each item (0 without audio)."""
        return [it.channels for it in self._items]

    def span_ns(self, item: int) -> int:
        """Timeline length of playlist item ``item``."""
        return self._items[item].span_ns

    @property
    def playlist_span_ns(self) -> int:
        """Timeline length of one pass over the playlist."""
        return sum(it.span_ns for it in self._items)

    @property
    def next_due_ns(self) -> Optional[int]:
        """Elapsed media time at which :meth:`poll` next has something to do (None: finished)."""
        if self._finished:
            return None
        it = self._items[self._pos]
        if self._next < len(it.events):
            return self._offset_ns + it.events[self._next].due_ns
        return self._offset_ns + it.span_ns

    # -------------------------------------------------------------------- polling

    def poll(self, elapsed_ns: int) -> list[Event]:
        """Events due by ``elapsed_ns`` of media time, in due order; advances the schedule."""
        out: list[Event] = []
        elapsed_ns = int(elapsed_ns)
        while not self._finished:
            it = self._items[self._pos]
            if self._next >= len(it.events):  # item exhausted: move on once its span elapsed
                end = self._offset_ns + it.span_ns
                if elapsed_ns < end:
                    break
                self._advance(end)
                continue
            event = it.events[self._next]
            due = self._offset_ns + event.due_ns
            if due > elapsed_ns:
                break
            out.append(replace(event, stamp_ns=self.start_ns + self._offset_ns + event.stamp_ns,
                               due_ns=due))
            self._next += 1
        return out

    def _advance(self, end_ns: int) -> None:
        self._offset_ns = end_ns
        self._next = 0
        if self._pos + 1 < len(self._items):
            self._pos += 1
        elif self.loop:
            self._pos = 0
            self._passes += 1
        else:
            self._finished = True
