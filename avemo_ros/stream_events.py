"""The typed, stamped events a :class:`~avemo_ros.pipeline.StreamingPipeline` takes, and
the one place camera messages become them (audio: :mod:`avemo_ros.audio_stream`).

A camera frame carries its undecoded payload and how to decode it: only the frames a
window selects are ever decoded, by the pipeline's worker.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from . import conversions as conv


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
