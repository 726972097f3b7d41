"""The typed, stamped events a :class:`~avemo_ros.pipeline.StreamingPipeline` takes, and
the one place messages become them (the live node and offline evaluation alike).

Camera messages: :func:`camera_frame` checks them (layout, encoding, size, a compressed
image's header) without decoding; the frame carries its payload and how to decode it, and
only the frames a window selects are ever decoded, by the pipeline's worker. Audio
messages: :class:`AudioMessageReader` (both audio_common_msgs flavours, PCM or MP3 bytes).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from . import conversions as conv
from .audio_codec import AudioChunk, audio_stamped_to_chunk
from .audio_stream import ByteAudioDecoder, ByteFormat, sniff_coding


def _as_is(payload: Any) -> np.ndarray:
    return payload


@dataclass(frozen=True)
class CameraFrame:
    """One camera frame: header stamp, payload, and ``decode(payload)`` -> RGB or grey uint8
    (raises a ConversionError for a bad frame); only the frames a window selects are decoded."""

    stamp_ns: int
    payload: Any
    decode: Callable[[Any], np.ndarray] = _as_is
    received_ns: Optional[int] = None  # arrival on the stamps' clock (offline: log time)
    received_s: Optional[float] = None  # arrival, monotonic seconds (live only: liveness)


@dataclass(frozen=True)
class MicrophoneChunk:
    """A block of audio: ``samples`` (n,) or (n, channels) float32, first sample at
    ``stamp_ns``."""

    stamp_ns: int
    samples: np.ndarray
    sample_rate: int
    received_ns: Optional[int] = None
    received_s: Optional[float] = None

    @property
    def end_ns(self) -> int:
        """Stamp just after the last sample."""
        return self.stamp_ns + int(self.samples.shape[0]) * 1_000_000_000 // self.sample_rate


def camera_frame(msg: Any, max_pixels: int = conv.DEFAULT_MAX_PIXELS, *,
                 received_ns: Optional[int] = None, received_s: Optional[float] = None
                 ) -> CameraFrame:
    """A ``sensor_msgs/Image`` or ``CompressedImage`` (rclpy or rosbags) -> CameraFrame.

    Checked without decoding (layout, encoding, pixel count, for compressed images the
    size in the PNG/JPEG header); raises UnsupportedImage, InvalidImage or ImageTooLarge.
    """
    if hasattr(msg, "encoding"):
        conv.validate_image(msg, max_pixels)

        def decode(m: Any) -> np.ndarray:  # grey is all the pipeline uses of a frame
            return conv.image_to_grey(m, max_pixels=max_pixels)
    else:
        conv.check_compressed(msg, max_pixels)

        def decode(m: Any) -> np.ndarray:
            return conv.compressed_to_rgb(m, max_pixels=max_pixels)
    return CameraFrame(conv.stamp_to_ns(msg.header.stamp), msg, decode, received_ns, received_s)


def microphone_chunk(chunk: Any, *, received_ns: Optional[int] = None,
                     received_s: Optional[float] = None) -> MicrophoneChunk:
    """An :class:`~avemo_ros.audio_codec.AudioChunk` -> MicrophoneChunk."""
    return MicrophoneChunk(chunk.stamp_ns, chunk.samples, chunk.sample_rate, received_ns,
                           received_s)


class AudioMessageReader:
    """Audio messages of one stream -> :class:`AudioChunk` s; the one reader the node and
    offline evaluation share.

    ``kind``: AudioStamped (layout inside each message), AudioDataStamped or AudioData
    (bytes: layout from :meth:`set_info`, else ``fallback`` whose coding ``auto`` tells
    MP3 from PCM by the bytes). ``hold_pcm()``: True while PCM should wait for an
    announced audio_info (dropped meanwhile). ``warn(text)``: a format disagreement.
    """

    def __init__(self, kind: str, fallback: ByteFormat = ByteFormat("auto"),
                 hold_pcm=lambda: False, warn=lambda text: None):
        self.kind, self.fallback, self._hold_pcm, self._warn = kind, fallback, hold_pcm, warn
        self.info: Optional[ByteFormat] = None
        self._decoder: Optional[ByteAudioDecoder] = None
        self._warned_mp3 = False

    def set_info(self, fmt: ByteFormat) -> bool:
        """Use the layout of an audio_info message; True when it changed."""
        if fmt == self.info:
            return False
        self.info, self._decoder = fmt, None
        return True

    def reset(self) -> None:
        """Forget the decoder state (a new subscription, a new bag)."""
        self._decoder = None

    def _byte_decoder(self, data: Any) -> Optional[ByteAudioDecoder]:
        fmt = self.info
        if fmt is None:
            p = self.fallback
            sniffed = sniff_coding(data)
            if sniffed == "wave" and self._hold_pcm():
                return None
            coding = sniffed if p.coding == "auto" else p.coding
            if p.coding == "wave" and sniffed == "mp3":
                if not self._warned_mp3:
                    self._warned_mp3 = True
                    self._warn("the audio bytes are an MP3 stream but audio_coding_format is "
                               "wave: decoding them as MP3")
                coding = "mp3"
            fmt = ByteFormat(coding, p.sample_format, p.channels, p.sample_rate)
        if self._decoder is None or self._decoder.format.coding != fmt.coding or (
                fmt.coding == "wave" and self._decoder.format != fmt):
            self._decoder = ByteAudioDecoder(fmt)
        return self._decoder

    def read(self, msg: Any, received_ns: int) -> Optional[AudioChunk]:
        """One message -> a chunk on its header clock (headerless AudioData: stamped by
        ``received_ns``, made sample-continuous); None while an MP3 frame is incomplete
        or PCM waits for audio_info. Raises ConversionError subclasses (typed)."""
        if self.kind == "AudioStamped":
            return audio_stamped_to_chunk(msg)
        data = msg.data if self.kind == "AudioData" else msg.audio.data
        decoder = self._byte_decoder(data)
        if decoder is None:
            return None
        if self.kind == "AudioData":
            return decoder.decode(data, received_ns, arrival=True)
        return decoder.decode(data, conv.stamp_to_ns(msg.header.stamp))


def from_clip_events(events: Any) -> list:
    """:mod:`avemo_ros.clip_stream` events (a clip as a camera and a microphone stream it)
    -> pipeline events, each received when it is due."""
    out: list = []
    for e in events:
        if hasattr(e, "rgb"):
            out.append(CameraFrame(e.stamp_ns, e.rgb, received_ns=e.due_ns))
        else:
            out.append(MicrophoneChunk(e.stamp_ns, e.samples, e.sample_rate,
                                       received_ns=e.due_ns))
    return out
