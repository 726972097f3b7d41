"""Clips laid end to end on one clock, as camera frames, audio chunks and ground truth for a bag.

The frames and chunks are those of :func:`avemo_ros.clip_stream.clip_events` (one rounding
rule for every stream made from clips).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional, Sequence

import numpy as np

from ..clip_stream import AudioEvent, ClipStreamError, clip_events, clip_span_ns
from .msg_types import NS, BagError
from .truth import TruthSegment
from .writer import AudioStreamChunk, Frame

__all__ = ["Timeline", "timeline_from_clips"]


@dataclass
class Timeline:
    """Clips laid end to end: frames, audio chunks and ground truth on one clock."""

    frames: list[Frame]
    audio: list[AudioStreamChunk]
    truth: list[TruthSegment]
    start_ns: int
    end_ns: int


def _stream_clip(clip: Any, fps: Optional[float]) -> SimpleNamespace:
    """The clip as clip_events reads it: frames re-timed to ``fps`` (the latest frame at each
    tick) when given, audio only where it has a rate."""
    frames, times = clip.frames, np.asarray(clip.frame_times, dtype=np.float64)
    if fps is not None and len(times):
        ticks = np.arange(0.0, float(clip.duration) - 1e-9, 1.0 / fps)
        idx = np.clip(np.searchsorted(times, ticks + 1e-6, side="right") - 1, 0, len(times) - 1)
        frames, times = [clip.frames[i] for i in idx], ticks
    has_audio = clip.audio is not None and len(clip.audio) and int(clip.sample_rate or 0) > 0
    return SimpleNamespace(frames=frames, frame_times=times,
                           audio=clip.audio if has_audio else None,
                           sample_rate=int(clip.sample_rate) if has_audio else 0)


def timeline_from_clips(clips: Sequence[Any], labels: Sequence[Optional[str]], *,
                        sources: Optional[Sequence[str]] = None, fps: Optional[float] = None,
                        chunk_s: float = 0.02, gap_s: float = 0.5,
                        start_ns: int = 1_700_000_000 * NS,
                        audio_rate: Optional[int] = None) -> Timeline:
    """Lay decoded clips (``avemo_ros.media.MediaClip``-like) end to end, ``gap_s`` apart.

    Frames keep their clip times (or are re-timed to ``fps``: the latest frame at each
    tick), audio is cut into ``chunk_s`` chunks (resampled to ``audio_rate``, default the
    first clip's rate, so one bag has one audio format), and each clip with a label
    becomes a truth segment spanning the clip (:func:`avemo_ros.clip_stream.clip_span_ns`).
    """
    if len(labels) != len(clips):
        raise BagError(f"{len(clips)} clips but {len(labels)} labels")
    if not (chunk_s > 0 and gap_s >= 0) or (fps is not None and not fps > 0):
        raise BagError(f"need chunk_s > 0, gap_s >= 0, fps > 0; got {chunk_s}, {gap_s}, {fps}")
    sources = list(sources) if sources is not None else [
        Path(getattr(c, "path", "") or f"clip{i}").name for i, c in enumerate(clips)]
    rates = [int(c.sample_rate) for c in clips if len(c.audio) and int(c.sample_rate) > 0]
    rate_out = int(audio_rate or (rates[0] if rates else 0)) or None
    frames: list[Frame] = []
    chunks: list[AudioStreamChunk] = []
    truth: list[TruthSegment] = []
    t = end = int(start_ns)
    for i, (clip, label, source) in enumerate(zip(clips, labels, sources)):
        try:
            span = clip_span_ns(clip, rate_out)
            if span <= 0:
                raise BagError(f"{source}: empty clip (no frames, no audio)")
            events = clip_events(_stream_clip(clip, fps), t, chunk_s=chunk_s,
                                 audio_rate=rate_out, item=i)
        except ClipStreamError as exc:
            raise BagError(f"{source}: {exc}") from exc
        for e in events:
            if isinstance(e, AudioEvent):
                chunks.append(AudioStreamChunk(e.stamp_ns, e.samples, e.sample_rate))
            else:
                frames.append(Frame(e.stamp_ns, e.rgb))
        if label:
            truth.append(TruthSegment(source, t, t + span, str(label)))
        end = t + span
        t = end + int(round(gap_s * NS))
    return Timeline(frames=frames, audio=chunks, truth=truth, start_ns=int(start_ns), end_ns=end)
