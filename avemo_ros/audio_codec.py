"""Audio messages <-> NumPy: both audio_common_msgs flavours, PCM bytes and MP3 streams.

Audio becomes an :class:`AudioChunk` of ``(n, channels)`` float32 samples in ``[-1, 1]``.
The readers duck-type their input, so they take rclpy messages and messages deserialized
by ``rosbags`` alike and need no ROS install; building messages needs the message module.

- mgonzs13/audio_common (``AudioStamped``: typed arrays + PortAudio format code);
- ros-drivers/audio_common, the released ``audio_common_msgs`` (``AudioData{uint8[] data}``
  with the layout in ``AudioInfo``: raw PCM, or an MP3 stream, audio_capture's default,
  decoded by :class:`Mp3StreamDecoder`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .conversions import (ConversionError, StampLike, as_stamp, filled_array, stamp_to_ns,
                          to_uint8_array, typed_array)
from .input_problems import Problem

_NS_PER_S = 1_000_000_000


class UnsupportedAudio(ConversionError):
    """Audio in a format or coding this package cannot read (counted as unsupported)."""

    problem = Problem.AUDIO_UNSUPPORTED


class NonFiniteAudio(ConversionError):
    """Float audio with NaN or Inf samples."""

    problem = Problem.AUDIO_NON_FINITE

# ----------------------------------------------------------------------------- audio

# PortAudio sample format constants used by AudioInfo.format (ROS 2 audio_common).
PA_FLOAT32, PA_INT32, PA_INT24, PA_INT16, PA_INT8, PA_UINT8 = 1, 2, 4, 8, 16, 32

# PortAudio format -> (name, AudioData field, dtype, scale, offset); sample = (x - offset) / scale
_PA_FORMATS = {
    PA_FLOAT32: ("float32", "float32_data", np.dtype(np.float32), 1.0, 0.0),
    PA_INT32: ("int32", "int32_data", np.dtype(np.int32), 2.0**31, 0.0),
    PA_INT24: ("int24", "int24_data", np.dtype(np.int32), 2.0**23, 0.0),
    PA_INT16: ("int16", "int16_data", np.dtype(np.int16), 2.0**15, 0.0),
    PA_INT8: ("int8", "int8_data", np.dtype(np.int8), 2.0**7, 0.0),
    PA_UINT8: ("uint8", "uint8_data", np.dtype(np.uint8), 2.0**7, 128.0),
}
STAMPED_SAMPLE_FORMATS = {v[0]: k for k, v in _PA_FORMATS.items()}  # name -> PortAudio code

# Legacy sample_format -> (numpy dtype or None for packed 24 bit, byte order, scale, offset)
LEGACY_SAMPLE_FORMATS = {
    "U8": (np.dtype("u1"), "|", 2.0**7, 128.0),
    "S8": (np.dtype("i1"), "|", 2.0**7, 0.0),
    "S16LE": (np.dtype("<i2"), "<", 2.0**15, 0.0),
    "S16BE": (np.dtype(">i2"), ">", 2.0**15, 0.0),
    "S24LE": (None, "<", 2.0**23, 0.0),
    "S24BE": (None, ">", 2.0**23, 0.0),
    "S32LE": (np.dtype("<i4"), "<", 2.0**31, 0.0),
    "S32BE": (np.dtype(">i4"), ">", 2.0**31, 0.0),
    "F32LE": (np.dtype("<f4"), "<", 1.0, 0.0),
    "F32BE": (np.dtype(">f4"), ">", 1.0, 0.0),
}

AUDIO_MSG_TYPES = ("AudioStamped", "AudioDataStamped", "AudioData")


@dataclass
class AudioChunk:
    """A block of audio: samples ``(n, channels)`` float32 in [-1, 1]."""

    samples: np.ndarray  # (n, channels) float32 in [-1, 1]
    sample_rate: int
    stamp_ns: int  # header stamp = time of the first sample

    @property
    def channels(self) -> int:
        """Number of channels."""
        return int(self.samples.shape[1])

    @property
    def duration_ns(self) -> int:
        """Length of the chunk in nanoseconds."""
        return int(self.samples.shape[0]) * _NS_PER_S // int(self.sample_rate)

    @property
    def end_ns(self) -> int:
        """Stamp of the sample just after this chunk."""
        return self.stamp_ns + self.duration_ns


def _check_layout(n_values: int, channels: int, sample_rate: int, what: str) -> None:
    if channels < 1:
        raise ConversionError(f"{what}: channels must be >= 1, got {channels}")
    if sample_rate <= 0:
        raise ConversionError(f"{what}: sample rate must be > 0, got {sample_rate}")
    if n_values == 0:
        raise ConversionError(f"{what}: empty audio data")
    if n_values % channels:
        raise ConversionError(
            f"{what}: {n_values} samples is not a multiple of {channels} channels")


def _to_float(values: np.ndarray, scale: float, offset: float, channels: int,
              what: str) -> np.ndarray:
    """Integer/float samples -> ``(n, channels)`` float32 in [-1, 1]."""
    out = values.astype(np.float32)  # the one copy
    if values.dtype.kind == "f":
        bad = int(out.size - np.count_nonzero(np.isfinite(out)))
        if bad:
            raise NonFiniteAudio(f"{what}: {bad} of {out.size} samples are NaN or Inf")
        np.clip(out, -1.0, 1.0, out=out)
    else:
        if offset:
            out -= np.float32(offset)
        out *= np.float32(1.0 / scale)
    return out.reshape(-1, channels)


def audio_stamped_to_chunk(msg: Any) -> AudioChunk:
    """``audio_common_msgs/AudioStamped`` (ROS 2 audio_common) -> :class:`AudioChunk`.

    Reads ``audio.info.{format, channels, rate}`` and the matching typed array of
    ``audio.audio_data``; float samples are clipped to [-1, 1], non-finite ones rejected.
    """
    try:
        stamp = msg.header.stamp
        info = msg.audio.info
        audio_data = msg.audio.audio_data
        fmt, channels, rate = int(info.format), int(info.channels), int(info.rate)
    except AttributeError as exc:
        raise ConversionError(
            "expected an AudioStamped message (header, audio.info, audio.audio_data), "
            f"got {type(msg).__name__}"
        ) from exc
    if fmt not in _PA_FORMATS:
        known = ", ".join(f"{code}={v[0]}" for code, v in _PA_FORMATS.items())
        raise UnsupportedAudio(f"AudioStamped: unknown sample format {fmt} (known: {known})")
    name, field, dtype, scale, offset = _PA_FORMATS[fmt]
    what = f"AudioStamped ({name})"
    data = getattr(audio_data, field, None)
    if data is None:  # mgonzs13/audio_common dropped int24_data in 4.0
        raise UnsupportedAudio(f"{what}: this audio_common_msgs AudioData has no {field} field; "
                               "publish paInt16 (8) or paInt32 (2) instead")
    values = typed_array(data, dtype)
    _check_layout(values.size, channels, rate, what)
    if fmt == PA_INT24 and values.size:
        lo, hi = int(values.min()), int(values.max())
        if lo < -(2**23) or hi >= 2**23:
            raise ConversionError(f"{what}: samples outside the 24-bit range ({lo}..{hi})")
    samples = _to_float(values, scale, offset, channels, what)
    return AudioChunk(samples=samples, sample_rate=rate, stamp_ns=stamp_to_ns(stamp))


def _legacy_format(sample_format: str) -> tuple:
    key = str(sample_format).strip().upper()
    if key not in LEGACY_SAMPLE_FORMATS:
        raise UnsupportedAudio(
            f"unsupported sample_format {sample_format!r} "
            f"(supported: {', '.join(LEGACY_SAMPLE_FORMATS)})"
        )
    return (key,) + LEGACY_SAMPLE_FORMATS[key]


def sample_width(sample_format: str) -> int:
    """Bytes per sample of a legacy ``sample_format`` (S24LE/BE: 3, packed)."""
    _, dtype, _, _, _ = _legacy_format(sample_format)
    return 3 if dtype is None else dtype.itemsize


def audio_bytes_to_chunk(
    data: Any, *, sample_format: str, channels: int, sample_rate: int, stamp_ns: int
) -> AudioChunk:
    """Raw interleaved PCM bytes (legacy ``AudioData.data``) -> :class:`AudioChunk`.

    ``sample_format``: U8, S8, S16LE/BE, S24LE/BE (3 bytes packed), S32LE/BE, F32LE/BE.
    """
    key, dtype, order, scale, offset = _legacy_format(sample_format)
    what = f"AudioData ({key})"
    raw = to_uint8_array(data)
    width = sample_width(key)
    if raw.size % width:
        raise ConversionError(
            f"{what}: {raw.size} bytes is not a whole number of {width}-byte samples")
    n_values = raw.size // width
    _check_layout(n_values, int(channels), int(sample_rate), what)
    if dtype is None:  # packed 24 bit: widen to int32 with the sample in the top 3 bytes
        wide = np.zeros((n_values, 4), np.uint8)
        if order == "<":
            wide[:, 1:] = raw.reshape(-1, 3)
        else:
            wide[:, :3] = raw.reshape(-1, 3)
        values = wide.view(order + "i4").reshape(-1) >> 8
    else:
        values = raw.view(dtype)
    samples = _to_float(values, scale, offset, int(channels), what)
    return AudioChunk(samples=samples, sample_rate=int(sample_rate), stamp_ns=int(stamp_ns))


def _samples_2d(samples: Any) -> np.ndarray:
    arr = np.asarray(samples, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ConversionError(
            f"audio samples must be (n,) or (n, channels), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ConversionError("audio samples are empty")
    if not np.all(np.isfinite(arr)):
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise ConversionError(f"{bad} of {arr.size} audio samples are NaN or Inf")
    return np.clip(arr, -1.0, 1.0)


def _quantize(arr: np.ndarray, scale: float, offset: float, lo: int, hi: int,
              dtype: str) -> np.ndarray:
    q = np.rint(arr.astype(np.float64) * scale + offset)
    return np.clip(q, lo, hi).astype(dtype)


def chunk_to_audio_stamped(
    chunk_samples_float: Any, sample_rate: int, stamp: StampLike, frame_id: str, msg_module: Any,
    fmt: str = "int16"
) -> Any:
    """Float samples ``(n, channels)`` in [-1, 1] -> ``msg_module.AudioStamped``.

    ``fmt``: float32, int32, int24, int16, int8 or uint8; ``msg_module`` is the imported
    ``audio_common_msgs.msg`` (stamped flavour).
    """
    arr = _samples_2d(chunk_samples_float)
    if int(sample_rate) <= 0:
        raise ConversionError(f"sample rate must be > 0, got {sample_rate}")
    if fmt not in STAMPED_SAMPLE_FORMATS:
        raise ConversionError(
            f"unsupported AudioStamped format {fmt!r} "
            f"(supported: {', '.join(STAMPED_SAMPLE_FORMATS)})"
        )
    code = STAMPED_SAMPLE_FORMATS[fmt]
    _, field, dtype, scale, offset = _PA_FORMATS[code]
    if fmt == "float32":
        values = arr
    else:
        info = np.iinfo(dtype)
        lo, hi = (-(2**23), 2**23 - 1) if fmt == "int24" else (info.min, info.max)
        values = _quantize(arr, scale, offset, lo, hi, dtype.str)
    try:
        msg = msg_module.AudioStamped()
    except AttributeError as exc:
        raise ConversionError(
            f"{getattr(msg_module, '__name__', msg_module)} has no AudioStamped") from exc
    msg.header.stamp = as_stamp(stamp)
    msg.header.frame_id = frame_id
    msg.audio.info.format = code
    msg.audio.info.channels = int(arr.shape[1])
    msg.audio.info.rate = int(sample_rate)
    msg.audio.info.chunk = int(arr.shape[0])
    if not hasattr(msg.audio.audio_data, field):
        raise UnsupportedAudio(
            f"{getattr(msg_module, '__name__', msg_module)}.AudioData has no {field}")
    setattr(msg.audio.audio_data, field, filled_array(dtype.char, values))
    return msg


def chunk_to_audio_data_bytes(samples_float: Any, sample_format: str) -> bytes:
    """Float samples ``(n, channels)`` in [-1, 1] -> interleaved PCM bytes in ``sample_format``."""
    arr = _samples_2d(samples_float)
    key, dtype, order, scale, offset = _legacy_format(sample_format)
    if dtype is None:  # packed 24 bit
        wide = _quantize(arr, scale, 0.0, -(2**23), 2**23 - 1,
                         order + "i4").view(np.uint8).reshape(-1, 4)
        return np.ascontiguousarray(wide[:, :3] if order == "<" else wide[:, 1:]).tobytes()
    if dtype.kind == "f":
        return arr.astype(dtype).tobytes()
    info = np.iinfo(dtype)
    return _quantize(arr, scale, offset, info.min, info.max, dtype.str).tobytes()
