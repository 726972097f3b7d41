"""Media file I/O: decode audio-video clips with PyAV (encoding: :mod:`avemo_ros.media_write`).

No ROS imports. Video frames are ``(N, H, W, 3)`` uint8 RGB, audio is
``(n_samples, channels)`` float32 in ``[-1, 1]`` at the file's native rate.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Optional, Union

import av
import numpy as np

_LOG = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

# Integer sample formats and the scale that maps them to [-1, 1].
_INT_SCALES = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}

# Segment reads seek this far before the segment start: keyframe and audio packet
# boundaries then lie before it, and decoding skips forward to the exact start.
_SEEK_MARGIN_S = 1.0


class MediaError(ValueError):
    """A media file is missing, unreadable or cannot be written."""


@dataclass
class MediaClip:
    """Decoded audio-video clip."""

    frames: np.ndarray  # (N, H, W, 3) uint8 RGB
    frame_times: np.ndarray  # (N,) float64 seconds from clip start (presentation time)
    audio: np.ndarray  # (n_samples, channels) float32 in [-1, 1]
    sample_rate: int
    path: str = field(default="")

    @property
    def audio_duration(self) -> float:
        """Audio length in seconds (0 without audio)."""
        if self.sample_rate <= 0:
            return 0.0
        return float(self.audio.shape[0]) / float(self.sample_rate)

    @property
    def video_duration(self) -> float:
        """Video length in seconds: last frame time plus one frame period (0 without video)."""
        n = len(self.frame_times)
        if n == 0:
            return 0.0
        fps = self.fps
        period = 1.0 / fps if fps > 0 else 0.0
        return float(self.frame_times[-1]) + period

    @property
    def duration(self) -> float:
        """Clip length in seconds: the longer of the audio and video streams."""
        return max(self.audio_duration, self.video_duration)

    @property
    def fps(self) -> float:
        """Mean frame rate estimated from the frame times (0 with fewer than two frames)."""
        n = len(self.frame_times)
        if n < 2:
            return 0.0
        span = float(self.frame_times[-1] - self.frame_times[0])
        return (n - 1) / span if span > 0 else 0.0


# ----------------------------------------------------------------------------- reading


def _audio_frame_to_array(frame: "av.AudioFrame") -> np.ndarray:
    """Convert one decoded audio frame to ``(samples, channels)`` float32."""
    channels = len(frame.layout.channels)
    raw = frame.to_ndarray()
    fmt = frame.format
    if fmt.is_planar:
        data = raw.reshape(channels, -1).T
    else:
        data = raw.reshape(-1, channels)
    name = fmt.name.rstrip("p")
    if name in ("flt", "dbl"):
        return data.astype(np.float32, copy=False)
    scale = _INT_SCALES.get(name)
    if scale is None:
        raise MediaError(f"unsupported audio sample format {fmt.name!r}")
    out = data.astype(np.float32)
    if name == "u8":
        out -= 128.0
    return out / np.float32(scale)


def _frame_time(frame, fallback: float) -> float:
    if frame.pts is None or frame.time_base is None:
        return fallback
    return float(frame.pts * frame.time_base)


def _decode(container, want_video: bool,
            want_audio: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """One demux pass over the first video and first audio stream of ``container``."""
    vstream = container.streams.video[0] if want_video and container.streams.video else None
    astream = container.streams.audio[0] if want_audio and container.streams.audio else None
    streams = [s for s in (vstream, astream) if s is not None]
    images: list[np.ndarray] = []
    times: list[float] = []
    chunks: list[np.ndarray] = []
    rate = int(astream.codec_context.sample_rate or 0) if astream is not None else 0
    v_rate = float(vstream.average_rate or 0) if vstream is not None else 0.0
    t0 = float(container.start_time) / av.time_base if container.start_time is not None else 0.0
    if streams:
        for packet in container.demux(*streams):
            for frame in packet.decode():
                if packet.stream is vstream:
                    images.append(frame.to_ndarray(format="rgb24"))
                    times.append(_frame_time(frame, t0 + len(times) / (v_rate or 30.0)) - t0)
                else:
                    rate = int(frame.sample_rate)
                    chunks.append(_audio_frame_to_array(frame))
    if images:
        frames = np.stack(images)
        frame_times = np.asarray(times, np.float64)
        order = np.argsort(frame_times, kind="stable")  # decoders emit display order; be safe
        frames, frame_times = frames[order], frame_times[order]
    else:
        frames, frame_times = np.zeros((0, 0, 0, 3), np.uint8), np.zeros(0, np.float64)
    if chunks:
        audio = np.concatenate(chunks, axis=0)
        # AAC pads its last frame; the container records the true stream length.
        if astream.duration is not None and astream.time_base is not None and rate > 0:
            n_true = int(round(float(astream.duration * astream.time_base) * rate))
            if 0 < n_true < audio.shape[0]:
                audio = audio[:n_true]
        audio = np.ascontiguousarray(audio, dtype=np.float32)
    else:
        audio, rate = np.zeros((0, 1), np.float32), 0
    return frames, frame_times, audio, rate


def _check_segment(start_s: Optional[float],
                   end_s: Optional[float]) -> tuple[float, Optional[float]]:
    start = 0.0 if start_s is None else float(start_s)
    if not np.isfinite(start) or start < 0:
        raise ValueError(f"segment start must be a finite time >= 0 s, got {start_s}")
    if end_s is not None and not (np.isfinite(end_s) and end_s > start):
        raise ValueError(f"segment end must be after its start ({start} s), got {end_s}")
    return start, (None if end_s is None else float(end_s))


def _audio_slice(x: np.ndarray, t_first: float, rate: int, start: float,
                 end: Optional[float]) -> np.ndarray:
    """Samples of one decoded audio frame (first sample at ``t_first``) inside [start, end)."""
    lo = max(0, int(round((start - t_first) * rate)))
    hi = x.shape[0] if end is None else min(x.shape[0], int(round((end - t_first) * rate)))
    return x[lo:hi] if hi > lo else x[:0]


def _decode_segment(container, want_video: bool, want_audio: bool, start: float,
                    end: Optional[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Seek near ``start`` and decode [start, end) of the first video / audio stream.

    Times are taken from the frames' presentation stamps (relative to the container's
    start) and returned relative to ``start``; decoding stops once both streams passed
    ``end``, so a short segment of a long file costs little.
    """
    vstream = container.streams.video[0] if want_video and container.streams.video else None
    astream = container.streams.audio[0] if want_audio and container.streams.audio else None
    streams = [s for s in (vstream, astream) if s is not None]
    t0 = float(container.start_time) / av.time_base if container.start_time is not None else 0.0
    seek_s = max(0.0, start - _SEEK_MARGIN_S)
    if streams and seek_s > 0:
        container.seek(int((t0 + seek_s) * av.time_base), backward=True, any_frame=False)
    v_rate = float(vstream.average_rate or 0) if vstream is not None else 0.0
    a_end = None  # true audio length (AAC pads its last frame)
    if astream is not None and astream.duration is not None and astream.time_base is not None:
        a_end = float(astream.duration * astream.time_base)
    a_stop = end if a_end is None else (a_end if end is None else min(end, a_end))
    images: list[np.ndarray] = []
    times: list[float] = []
    chunks: list[np.ndarray] = []
    rate = int(astream.codec_context.sample_rate or 0) if astream is not None else 0
    v_last = a_next = None  # running times for frames that carry no stamp
    v_done, a_done = vstream is None, astream is None
    for packet in container.demux(*streams):
        for frame in packet.decode():
            if packet.stream is vstream:
                if v_last is None:
                    fallback = seek_s
                else:
                    fallback = v_last + 1.0 / (v_rate or 30.0)
                t = _frame_time(frame, t0 + fallback) - t0
                v_last = t
                if end is not None and t >= end:
                    v_done = True
                elif t >= start:
                    images.append(frame.to_ndarray(format="rgb24"))
                    times.append(t - start)
            elif packet.stream is astream:
                rate = int(frame.sample_rate)
                t = _frame_time(frame, t0 + (seek_s if a_next is None else a_next)) - t0
                x = _audio_frame_to_array(frame)
                a_next = t + x.shape[0] / rate
                if a_stop is not None and t >= a_stop:
                    a_done = True
                else:
                    piece = _audio_slice(x, t, rate, start, a_stop)
                    if piece.shape[0]:
                        chunks.append(piece)
        if v_done and a_done:
            break
    if images:
        frames = np.stack(images)
        frame_times = np.asarray(times, np.float64)
        order = np.argsort(frame_times, kind="stable")
        frames, frame_times = frames[order], frame_times[order]
    else:
        frames, frame_times = np.zeros((0, 0, 0, 3), np.uint8), np.zeros(0, np.float64)
    if chunks:
        audio = np.ascontiguousarray(np.concatenate(chunks, axis=0), dtype=np.float32)
    else:
        audio, rate = np.zeros((0, 1), np.float32), 0
    if streams and not images and not chunks:
        span = f"[{start:g}, {'end' if end is None else f'{end:g}'}) s"
        raise MediaError(f"segment {span} holds no frames or samples "
                         f"(file length {_container_seconds(container):.2f} s)")
    return frames, frame_times, audio, rate


def _container_seconds(container) -> float:
    return float(container.duration) / av.time_base if container.duration else 0.0


def read_media(path: PathLike, *, video: bool = True, audio: bool = True,
               start_s: Optional[float] = None, end_s: Optional[float] = None) -> MediaClip:
    """Decode a media file, or its time segment ``[start_s, end_s)``, into a :class:`MediaClip`.

    Streams that are absent (or not requested) come back as empty arrays:
    frames ``(0, 0, 0, 3)``, audio ``(0, 1)`` with ``sample_rate`` 0.
    With a segment (either bound given; ``end_s`` None: to the end of the file), the
    decoder seeks near ``start_s``, keeps the frames and samples whose presentation time
    lies in the segment, and frame times count from ``start_s`` (the first sample kept is
    the one at ``start_s``). Raises :class:`MediaError` for a missing or undecodable file
    or a segment outside it, ValueError for a segment that is not one.
    """
    path_str = os.fspath(path)
    segment = start_s is not None or end_s is not None
    if segment:
        start, end = _check_segment(start_s, end_s)
    if not os.path.isfile(path_str):
        raise MediaError(f"media file not found: {path_str}")
    try:
        with av.open(path_str, mode="r") as container:
            if segment:
                frames, times, samples, rate = _decode_segment(container, video, audio, start, end)
            else:
                frames, times, samples, rate = _decode(container, video, audio)
    except MediaError as exc:
        if segment and path_str not in str(exc):
            raise MediaError(f"{path_str}: {exc}") from exc
        raise
    except (av.FFmpegError, OSError, ValueError, IndexError) as exc:
        raise MediaError(f"cannot decode media file {path_str}: {exc}") from exc
    return MediaClip(frames=frames, frame_times=times, audio=samples, sample_rate=rate,
                     path=path_str)


Segment = tuple[Optional[float], Optional[float]]


def read_av(video_path: Optional[PathLike], audio_path: Optional[PathLike], *,
            video_segment: Optional[Segment] = None,
            audio_segment: Optional[Segment] = None) -> MediaClip:
    """Frames from ``video_path`` and audio from ``audio_path`` as one :class:`MediaClip`.

    Either path may be None (that stream comes back empty) or both may name the same file.
    Each segment ``(start_s, end_s)`` applies to its own file (None: the whole file), and
    both streams' times count from their segment's start, so a video segment of a long
    recording lines up with an audio file holding just that segment. ``path`` of the
    result is the video path, or the audio path without video.
    """
    if video_path is None and audio_path is None:
        raise ValueError("read_av needs a video path, an audio path or both")
    vseg = video_segment or (None, None)
    aseg = audio_segment or (None, None)
    same = (video_path is not None and audio_path is not None
            and os.fspath(video_path) == os.fspath(audio_path) and vseg == aseg)
    if same:
        return read_media(video_path, start_s=vseg[0], end_s=vseg[1])
    vclip = aclip = None
    if video_path is not None:
        vclip = read_media(video_path, audio=False, start_s=vseg[0], end_s=vseg[1])
        if len(vclip.frame_times) == 0:
            raise MediaError(f"{os.fspath(video_path)}: no video stream")
    if audio_path is not None:
        aclip = read_media(audio_path, video=False, start_s=aseg[0], end_s=aseg[1])
        if aclip.sample_rate == 0:
            raise MediaError(f"{os.fspath(audio_path)}: no audio stream")
    empty_frames = np.zeros((0, 0, 0, 3), np.uint8), np.zeros(0, np.float64)
    frames, times = (vclip.frames, vclip.frame_times) if vclip is not None else empty_frames
    samples, rate = (aclip.audio, aclip.sample_rate) if aclip is not None else (
        np.zeros((0, 1), np.float32), 0)
    return MediaClip(frames=frames, frame_times=times, audio=samples, sample_rate=rate,
                     path=os.fspath(video_path if video_path is not None else audio_path))


def __getattr__(name: str):
    """``write_media`` / ``write_wav`` live in :mod:`avemo_ros.media_write` (re-exported)."""
    if name in ("write_media", "write_wav"):
        from . import media_write

        return getattr(media_write, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
