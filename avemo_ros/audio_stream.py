"""Byte audio streams as ros-drivers ``audio_capture`` publishes them, and their clocks.

``audio_capture`` (the released audio_common) sends ``AudioData{uint8[] data}``: raw PCM
when run with ``format:=wave``, an MP3 stream with its default ``format:=mp3``. The
layout comes from its ``audio_info`` topic (:class:`ByteFormat`); before that arrives,
:func:`sniff_coding` tells MP3 from PCM so that MP3 is never read as PCM.

Its header stamps come from the GStreamer pipeline clock, not ROS time;
:class:`ClockMapper` maps such a stream onto the node clock by a fixed offset.
Everything here is ROS-free: bytes and nanoseconds in, :class:`AudioChunk` out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .audio_codec import AudioChunk, UnsupportedAudio, audio_bytes_to_chunk
from .conversions import ConversionError, to_uint8_array

NS = 1_000_000_000
CODINGS = ("wave", "mp3")

# MPEG audio layer III frame header tables: bitrate kbit/s by index, sample rates by version
_BITRATES_V1 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_BITRATES_V2 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


@dataclass(frozen=True)
class ByteFormat:
    """Layout of ``AudioData.data`` bytes: the fields of the ros-drivers ``AudioInfo``."""

    coding: str = "wave"  # wave (raw PCM) | mp3
    sample_format: str = "S16LE"
    channels: int = 1
    sample_rate: int = 16000

    @classmethod
    def from_info(cls, info: Any) -> "ByteFormat":
        """From an ``audio_common_msgs/AudioInfo`` (ros-drivers) message."""
        return cls(coding=str(info.coding_format).strip().lower() or "wave",
                   sample_format=str(info.sample_format).strip().upper() or "S16LE",
                   channels=int(info.channels), sample_rate=int(info.sample_rate))

    def describe(self) -> str:
        """Short text, e.g. ``mp3`` or ``wave S16LE 1 ch 16000 Hz``."""
        if self.coding == "mp3":
            return "mp3"
        return f"{self.coding} {self.sample_format} {self.channels} ch {self.sample_rate} Hz"


def _mp3_frame_length(buf: np.ndarray, at: int) -> int:
    """Length in bytes of the MPEG layer III frame whose header starts at ``at``, else 0."""
    if at + 4 > buf.size or buf[at] != 0xFF or (buf[at + 1] & 0xE0) != 0xE0:
        return 0
    version, layer = (buf[at + 1] >> 3) & 3, (buf[at + 1] >> 1) & 3
    bitrate_i, rate_i, padding = buf[at + 2] >> 4, (buf[at + 2] >> 2) & 3, (buf[at + 2] >> 1) & 1
    if version == 1 or layer != 1 or bitrate_i in (0, 15) or rate_i == 3:
        return 0
    rate = _RATES[int(version)][int(rate_i)]
    kbps = (_BITRATES_V1 if version == 3 else _BITRATES_V2)[int(bitrate_i)]
    return (144 if version == 3 else 72) * kbps * 1000 // rate + int(padding)


def sniff_coding(data: Any) -> str:
    """``mp3`` when the bytes start with an ID3 tag or MPEG layer III frames, else ``wave``.

    A frame header must be followed by another one (or by the end of the buffer) exactly
    one frame later, so PCM that happens to hold a sync word is not taken for MP3.
    """
    buf = to_uint8_array(data)
    if buf.size >= 3 and bytes(buf[:3]) == b"ID3":
        return "mp3"
    length = _mp3_frame_length(buf, 0)
    if length == 0:
        return "wave"
    if length == buf.size or _mp3_frame_length(buf, length):
        return "mp3"
    return "wave"


class Mp3StreamDecoder:
    """Incremental MP3 decoding with PyAV: bytes in as they arrive, float samples out."""

    def __init__(self) -> None:
        try:
            import av
        except ImportError as exc:
            raise UnsupportedAudio(
                "the microphone sends MP3 but PyAV is not installed: "
                "pip install av, or run audio_capture with format:=wave") from exc
        try:
            self._ctx = av.CodecContext.create("mp3", "r")
        except Exception as exc:  # an FFmpeg build without the mp3 decoder
            raise UnsupportedAudio(f"this PyAV has no MP3 decoder ({exc}): "
                                   "run audio_capture with format:=wave") from exc
        self._av_error = av.error.FFmpegError
        self.sample_rate: Optional[int] = None

    def decode(self, data: Any) -> np.ndarray:
        """Samples ``(n, channels)`` float32 completed by these bytes (n may be 0)."""
        out = []
        try:
            for packet in self._ctx.parse(bytes(to_uint8_array(data))):
                for frame in self._ctx.decode(packet):
                    arr = frame.to_ndarray()
                    if frame.format.is_planar:  # (channels, n) -> (n, channels)
                        arr = arr.T
                    else:
                        arr = arr.reshape(-1, len(frame.layout.channels))
                    if arr.dtype.kind != "f":
                        arr = arr.astype(np.float32) / np.float32(np.iinfo(arr.dtype).max)
                    self.sample_rate = int(frame.sample_rate)
                    out.append(np.clip(arr.astype(np.float32, copy=False), -1.0, 1.0))
        except self._av_error as exc:
            raise ConversionError(f"MP3 stream not decodable: {exc}") from exc
        if not out:
            return np.zeros((0, 1), np.float32)
        return np.concatenate(out) if len(out) > 1 else out[0]


class SampleClock:
    """Sample-continuous stamps for a stream whose messages carry only a rough time.

    Each block of ``n`` samples starts where the previous one ended, unless the
    reference time of its message is more than ``resync_s`` away: then the stream
    restarts at that reference (a gap, a driver restart).
    """

    def __init__(self, resync_s: float = 0.25):
        self._resync_ns = int(resync_s * NS)
        self._next_ns: Optional[int] = None

    def stamp(self, reference_ns: int, n: int, rate: int) -> int:
        """Stamp of the first of ``n`` samples at ``rate`` whose message came at
        ``reference_ns``."""
        if self._next_ns is None or abs(reference_ns - self._next_ns) > self._resync_ns:
            self._next_ns = reference_ns
        start = self._next_ns
        self._next_ns = start + n * NS // max(int(rate), 1)
        return start

    def reset(self) -> None:
        """Forget the stream position."""
        self._next_ns = None


class ClockMapper:
    """Header stamps -> node clock, for drivers that stamp with another clock.

    ``mode``: ``header`` trusts the stamps. ``auto`` trusts them while they are within
    ``tolerance_s`` of the node clock or of the other stream's stamps (``peer_ns``, the
    camera's: a bag replayed without sim time keeps both streams on the bag's clock);
    otherwise it maps the stream by the fixed offset measured when it drifted out, and
    measures again when the mapped stamps drift out again.
    """

    def __init__(self, mode: str = "auto", tolerance_s: float = 10.0):
        if mode not in ("auto", "header"):
            raise ValueError(f"clock mode {mode!r} is not one of auto, header")
        self.mode = mode
        self._tolerance_ns = int(tolerance_s * NS)
        self.offset_ns = 0
        self.changes = 0  # how often the offset changed

    def map(self, header_ns: int, now_ns: int, peer_ns: Optional[int] = None) -> int:
        """The header stamp on the node clock."""
        if self.mode == "header":
            return header_ns
        offset = self.offset_ns
        if peer_ns is not None and abs(peer_ns - header_ns) <= self._tolerance_ns:
            offset = 0
        elif abs(now_ns - (header_ns + offset)) > self._tolerance_ns:
            offset = now_ns - header_ns
        if offset != self.offset_ns:
            self.offset_ns = offset
            self.changes += 1
        return header_ns + offset


class ByteAudioDecoder:
    """``AudioData`` bytes of one stream -> :class:`AudioChunk` s, PCM or MP3."""

    def __init__(self, fmt: ByteFormat):
        if fmt.coding not in CODINGS:
            raise UnsupportedAudio(f"audio coding_format {fmt.coding!r} is not supported "
                                   f"({', '.join(CODINGS)}): run audio_capture with format:=wave")
        self.format = fmt
        self._mp3 = Mp3StreamDecoder() if fmt.coding == "mp3" else None
        self._clock = SampleClock()

    def decode(self, data: Any, stamp_ns: int, arrival: bool = False) -> Optional[AudioChunk]:
        """The samples these bytes complete, or None when they complete none yet.

        ``stamp_ns``: the message's header stamp (its first sample's time), or with
        ``arrival`` the time it arrived (a headerless ``AudioData``: the samples end then).
        PCM with a header stamp keeps it; MP3 (decoder delay) and arrival times are made
        sample-continuous by a :class:`SampleClock`.
        """
        if self._mp3 is None:
            f = self.format
            chunk = audio_bytes_to_chunk(data, sample_format=f.sample_format, channels=f.channels,
                                         sample_rate=f.sample_rate, stamp_ns=stamp_ns)
            if arrival:
                chunk.stamp_ns = self._clock.stamp(stamp_ns - chunk.duration_ns,
                                                   chunk.samples.shape[0], f.sample_rate)
            return chunk
        samples = self._mp3.decode(data)
        if samples.shape[0] == 0:
            return None
        rate = int(self._mp3.sample_rate)
        n = samples.shape[0]
        reference = stamp_ns - n * NS // rate if arrival else stamp_ns
        return AudioChunk(samples=samples, sample_rate=rate,
                          stamp_ns=self._clock.stamp(reference, n, rate))

