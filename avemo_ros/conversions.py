"""Conversions between ROS messages and NumPy: images, audio chunks, stamps.

Images become ``(H, W, 3)`` uint8 RGB arrays; audio becomes an :class:`AudioChunk`
of ``(n, channels)`` float32 samples in ``[-1, 1]``. Audio handling works with both
``audio_common_msgs`` flavours by duck typing, so that package is imported only when
a message type is asked for (:func:`load_audio_msg_types`).

The message -> NumPy functions duck-type their input, so they take rclpy messages and
messages deserialized by ``rosbags`` (whose ``uint8[]`` fields are NumPy arrays) alike,
and work without ROS installed; building messages needs the rclpy message packages.
"""
from __future__ import annotations

import array
import importlib
import os
from dataclasses import dataclass
from typing import Any, Optional, Union

import cv2
import numpy as np

try:  # rclpy message classes are needed to BUILD messages; reading works without them
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import CompressedImage, Image
except ImportError:  # e.g. offline evaluation of rosbags-deserialized messages, no ROS installed
    Time = CompressedImage = Image = None  # type: ignore[assignment,misc]

__all__ = [
    "AUDIO_MSG_TYPES",
    "AudioChunk",
    "ConversionError",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_ENCODINGS",
    "LEGACY_SAMPLE_FORMATS",
    "PA_FLOAT32",
    "PA_INT16",
    "PA_INT24",
    "PA_INT32",
    "PA_INT8",
    "PA_UINT8",
    "STAMPED_SAMPLE_FORMATS",
    "audio_bytes_to_chunk",
    "audio_stamped_to_chunk",
    "check_image",
    "chunk_to_audio_data_bytes",
    "chunk_to_audio_stamped",
    "compressed_to_rgb",
    "image_to_rgb",
    "load_audio_msg_types",
    "ns_to_stamp",
    "rgb_to_compressed",
    "rgb_to_image",
    "sample_width",
    "stamp_to_ns",
    "to_uint8_array",
]


class ConversionError(ValueError):
    """A message cannot be converted (unsupported encoding, malformed data, ...)."""


# ----------------------------------------------------------------------------- stamps

_NS_PER_S = 1_000_000_000
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1

StampLike = Union[Time, int]


def stamp_to_ns(stamp: Any) -> int:
    """Nanoseconds of a ``builtin_interfaces/Time`` (or anything with ``nanoseconds``)."""
    if hasattr(stamp, "sec") and hasattr(stamp, "nanosec"):
        return int(stamp.sec) * _NS_PER_S + int(stamp.nanosec)
    if hasattr(stamp, "nanoseconds"):  # rclpy.time.Time
        return int(stamp.nanoseconds)
    raise ConversionError(f"not a time stamp: {type(stamp).__name__}")


def _ros_class(cls: Any, name: str) -> Any:
    if cls is None:
        raise ConversionError(f"building a {name} message needs the ROS 2 Python message packages (rclpy)")
    return cls


def ns_to_stamp(ns: int) -> Time:
    """``builtin_interfaces/Time`` for integer nanoseconds (``sec`` must fit in int32)."""
    sec, nanosec = divmod(int(ns), _NS_PER_S)
    if not _INT32_MIN <= sec <= _INT32_MAX:
        raise ConversionError(f"time {ns} ns does not fit builtin_interfaces/Time (int32 seconds)")
    return _ros_class(Time, "builtin_interfaces/Time")(sec=sec, nanosec=nanosec)


def _as_stamp(stamp: Any) -> Time:
    if isinstance(stamp, (int, np.integer)):
        return ns_to_stamp(int(stamp))
    if Time is not None and isinstance(stamp, Time):
        return stamp
    return ns_to_stamp(stamp_to_ns(stamp))


# ----------------------------------------------------------------------------- buffers


def to_uint8_array(data: Any) -> np.ndarray:
    """A 1-D uint8 view of a message byte field, without copying where possible.

    rclpy gives ``array.array('B')`` for ``uint8[]``, a list of 1-byte ``bytes`` for
    ``byte[]``; callers may pass ``bytes``/``bytearray``/``memoryview``/``ndarray``/lists.
    """
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise ConversionError(f"byte data must be uint8, got {data.dtype}")
        return data.reshape(-1)
    if isinstance(data, (bytes, bytearray, memoryview)):
        return np.frombuffer(data, dtype=np.uint8)
    if isinstance(data, array.array):
        if data.itemsize != 1:
            raise ConversionError(f"byte data must be an array of bytes, got typecode {data.typecode!r}")
        return np.frombuffer(data, dtype=np.uint8)
    if isinstance(data, (list, tuple)):
        if data and isinstance(data[0], (bytes, bytearray)):
            return np.frombuffer(b"".join(data), dtype=np.uint8)
        try:
            return np.asarray(data, dtype=np.uint8)
        except (OverflowError, TypeError, ValueError) as exc:
            raise ConversionError(f"byte data is not a sequence of values in [0, 255]: {exc}") from exc
    raise ConversionError(f"unsupported byte data container {type(data).__name__}")


def _typed_array(data: Any, dtype: np.dtype) -> np.ndarray:
    """A 1-D view of a typed sequence field (``array.array`` or list) as ``dtype``."""
    if isinstance(data, array.array):
        if np.dtype(data.typecode) != dtype:
            raise ConversionError(f"expected {dtype} samples, got array typecode {data.typecode!r}")
        return np.frombuffer(data, dtype=dtype)
    if isinstance(data, np.ndarray):
        return data.reshape(-1).astype(dtype, copy=False)
    try:
        return np.asarray(data, dtype=dtype).reshape(-1)
    except (OverflowError, TypeError, ValueError) as exc:
        raise ConversionError(f"samples are not {dtype} values: {exc}") from exc


def _filled_array(typecode: str, values: np.ndarray) -> array.array:
    """``array.array`` holding ``values`` (one copy, no per-element Python loop)."""
    out = array.array(typecode)
    out.frombytes(memoryview(np.ascontiguousarray(values)).cast("B"))
    return out


# ----------------------------------------------------------------------------- images

DEFAULT_MAX_PIXELS = 4096 * 4096

# encoding -> (channels, bytes per channel)
IMAGE_ENCODINGS = {
    "rgb8": (3, 1),
    "bgr8": (3, 1),
    "rgba8": (4, 1),
    "bgra8": (4, 1),
    "mono8": (1, 1),
    "mono16": (1, 2),
}


_TO_RGB = {
    "bgr8": cv2.COLOR_BGR2RGB,
    "rgba8": cv2.COLOR_RGBA2RGB,
    "bgra8": cv2.COLOR_BGRA2RGB,
    "mono8": cv2.COLOR_GRAY2RGB,
}


def _check_size(height: int, width: int, max_pixels: int) -> None:
    if height <= 0 or width <= 0:
        raise ConversionError(f"empty image: {width}x{height}")
    if height * width > max_pixels:
        raise ConversionError(f"image too large: {width}x{height} = {height * width} pixels > max_pixels {max_pixels}")


def _image_layout(msg: Image, max_pixels: int) -> tuple[str, int, int, np.ndarray]:
    """Validate an Image; return (encoding, channels, bytes per channel, data as uint8)."""
    encoding = str(msg.encoding).strip().lower()
    if encoding not in IMAGE_ENCODINGS:
        raise ConversionError(
            f"unsupported image encoding {msg.encoding!r} (supported: {', '.join(IMAGE_ENCODINGS)})"
        )
    channels, depth = IMAGE_ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    _check_size(height, width, max_pixels)
    row_bytes = width * channels * depth
    if step < row_bytes:
        raise ConversionError(
            f"image step {step} is smaller than a {encoding} row of {width} pixels ({row_bytes} bytes)"
        )
    buf = to_uint8_array(msg.data)
    need = (height - 1) * step + row_bytes
    if not need <= buf.size <= height * step:
        raise ConversionError(
            f"image data length {buf.size} does not match {width}x{height} {encoding} with step {step} "
            f"(expected {height * step} bytes)"
        )
    return encoding, channels, depth, buf


def check_image(msg: Image, max_pixels: int = DEFAULT_MAX_PIXELS) -> Optional[str]:
    """Why ``image_to_rgb`` would reject ``msg`` (None when it is fine); cheap, no pixel copy.

    Problems with the encoding mention "encoding"; the others describe size or layout.
    """
    try:
        _image_layout(msg, max_pixels)
    except ConversionError as exc:
        return str(exc)
    return None


def image_to_rgb(msg: Image, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """``sensor_msgs/Image`` -> ``(H, W, 3)`` uint8 RGB (a new array, one copy of the pixels).

    Supports rgb8, bgr8, rgba8, bgra8 (alpha dropped), mono8 and mono16 (top 8 bits),
    honours ``step`` padding and ``is_bigendian``.
    """
    encoding, channels, depth, buf = _image_layout(msg, max_pixels)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if depth == 1:
        dtype = np.dtype(np.uint8)
    else:
        dtype = np.dtype(">u2" if msg.is_bigendian else "<u2")
    # Zero-copy strided view over the message buffer (rows may be padded).
    view = np.ndarray(
        shape=(height, width, channels), dtype=dtype, buffer=buf, strides=(step, channels * depth, depth)
    )
    if encoding == "rgb8":
        return view.copy()
    if encoding == "mono16":  # keep the top 8 bits
        return cv2.cvtColor((view[..., 0] >> 8).astype(np.uint8), cv2.COLOR_GRAY2RGB)
    # OpenCV reads the row-strided view directly (much faster than NumPy channel reversal).
    src = view[..., 0] if encoding == "mono8" else view
    return cv2.cvtColor(src, _TO_RGB[encoding])


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ConversionError(f"expected an (H, W, 3) uint8 RGB array, got {arr.dtype} {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ConversionError(f"empty image: {arr.shape[1]}x{arr.shape[0]}")
    return arr


_FROM_RGB = {
    "bgr8": cv2.COLOR_RGB2BGR,
    "rgba8": cv2.COLOR_RGB2RGBA,  # opaque alpha
    "bgra8": cv2.COLOR_RGB2BGRA,
    "mono8": cv2.COLOR_RGB2GRAY,
}


def rgb_to_image(rgb: np.ndarray, stamp: StampLike, frame_id: str, encoding: str = "rgb8") -> Image:
    """``(H, W, 3)`` uint8 RGB -> ``sensor_msgs/Image`` (``stamp``: Time or int ns).

    ``encoding``: rgb8, bgr8, rgba8, bgra8 (opaque alpha), mono8 or mono16 (little endian).
    """
    arr = _check_rgb(rgb)
    encoding = encoding.strip().lower()
    if encoding == "rgb8":
        pixels = arr
    elif encoding in _FROM_RGB:
        pixels = cv2.cvtColor(np.ascontiguousarray(arr), _FROM_RGB[encoding])
    elif encoding == "mono16":
        gray = cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGB2GRAY)
        pixels = (gray.astype("<u2") << 8) | gray  # v * 257: full 16-bit range
    else:
        raise ConversionError(
            f"unsupported image encoding {encoding!r} (supported: {', '.join(IMAGE_ENCODINGS)})"
        )
    pixels = np.ascontiguousarray(pixels)
    msg = _ros_class(Image, "sensor_msgs/Image")()
    msg.header.stamp = _as_stamp(stamp)
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(arr.shape[0]), int(arr.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(pixels.strides[0])
    msg.data = _filled_array("B", pixels)
    return msg


_COMPRESSED_EXT = {"jpeg": ".jpg", "jpg": ".jpg", "png": ".png"}


def compressed_to_rgb(msg: CompressedImage, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """``sensor_msgs/CompressedImage`` (jpeg/png) -> ``(H, W, 3)`` uint8 RGB."""
    fmt = str(msg.format)
    if "compresseddepth" in fmt.lower().replace(" ", ""):
        raise ConversionError(f"unsupported compressed format {fmt!r}: compressedDepth is for depth images")
    buf = to_uint8_array(msg.data)
    if buf.size == 0:
        raise ConversionError(f"empty compressed image (format {fmt!r})")
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ConversionError(f"cannot decode compressed image of {buf.size} bytes (format {fmt!r})")
    _check_size(bgr.shape[0], bgr.shape[1], max_pixels)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def rgb_to_compressed(
    rgb: np.ndarray, stamp: StampLike, frame_id: str, fmt: str = "jpeg", quality: int = 90
) -> CompressedImage:
    """``(H, W, 3)`` uint8 RGB -> ``sensor_msgs/CompressedImage`` (jpeg or png).

    ``format`` follows image_transport: ``"rgb8; jpeg compressed bgr8"``. ``quality``
    (1-100) applies to jpeg only.
    """
    arr = _check_rgb(rgb)
    key = fmt.strip().lower()
    if key not in _COMPRESSED_EXT:
        raise ConversionError(f"unsupported compression format {fmt!r} (supported: jpeg, png)")
    params: list[int] = []
    if _COMPRESSED_EXT[key] == ".jpg":
        if not 1 <= int(quality) <= 100:
            raise ConversionError(f"jpeg quality must be in [1, 100], got {quality}")
        params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    ok, encoded = cv2.imencode(_COMPRESSED_EXT[key], cv2.cvtColor(arr, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ConversionError(f"cannot encode a {arr.shape[1]}x{arr.shape[0]} image as {fmt}")
    msg = _ros_class(CompressedImage, "sensor_msgs/CompressedImage")()
    msg.header.stamp = _as_stamp(stamp)
    msg.header.frame_id = frame_id
    msg.format = f"rgb8; {'jpeg' if key == 'jpg' else key} compressed bgr8"
    msg.data = _filled_array("B", encoded)
    return msg


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
        raise ConversionError(f"{what}: {n_values} samples is not a multiple of {channels} channels")


def _to_float(values: np.ndarray, scale: float, offset: float, channels: int, what: str) -> np.ndarray:
    """Integer/float samples -> ``(n, channels)`` float32 in [-1, 1]."""
    out = values.astype(np.float32)  # the one copy
    if values.dtype.kind == "f":
        bad = int(out.size - np.count_nonzero(np.isfinite(out)))
        if bad:
            raise ConversionError(f"{what}: {bad} of {out.size} samples are NaN or Inf")
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
            f"expected an AudioStamped message (header, audio.info, audio.audio_data), got {type(msg).__name__}"
        ) from exc
    if fmt not in _PA_FORMATS:
        known = ", ".join(f"{code}={v[0]}" for code, v in _PA_FORMATS.items())
        raise ConversionError(f"AudioStamped: unknown sample format {fmt} (known: {known})")
    name, field, dtype, scale, offset = _PA_FORMATS[fmt]
    what = f"AudioStamped ({name})"
    values = _typed_array(getattr(audio_data, field), dtype)
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
        raise ConversionError(
            f"unsupported sample_format {sample_format!r} (supported: {', '.join(LEGACY_SAMPLE_FORMATS)})"
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
        raise ConversionError(f"{what}: {raw.size} bytes is not a whole number of {width}-byte samples")
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
        raise ConversionError(f"audio samples must be (n,) or (n, channels), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ConversionError("audio samples are empty")
    if not np.all(np.isfinite(arr)):
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise ConversionError(f"{bad} of {arr.size} audio samples are NaN or Inf")
    return np.clip(arr, -1.0, 1.0)


def _quantize(arr: np.ndarray, scale: float, offset: float, lo: int, hi: int, dtype: str) -> np.ndarray:
    q = np.rint(arr.astype(np.float64) * scale + offset)
    return np.clip(q, lo, hi).astype(dtype)


def chunk_to_audio_stamped(
    chunk_samples_float: Any, sample_rate: int, stamp: StampLike, frame_id: str, msg_module: Any, fmt: str = "int16"
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
            f"unsupported AudioStamped format {fmt!r} (supported: {', '.join(STAMPED_SAMPLE_FORMATS)})"
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
        raise ConversionError(f"{getattr(msg_module, '__name__', msg_module)} has no AudioStamped") from exc
    msg.header.stamp = _as_stamp(stamp)
    msg.header.frame_id = frame_id
    msg.audio.info.format = code
    msg.audio.info.channels = int(arr.shape[1])
    msg.audio.info.rate = int(sample_rate)
    msg.audio.info.chunk = int(arr.shape[0])
    setattr(msg.audio.audio_data, field, _filled_array(dtype.char, values))
    return msg


def chunk_to_audio_data_bytes(samples_float: Any, sample_format: str) -> bytes:
    """Float samples ``(n, channels)`` in [-1, 1] -> interleaved PCM bytes in ``sample_format``."""
    arr = _samples_2d(samples_float)
    key, dtype, order, scale, offset = _legacy_format(sample_format)
    if dtype is None:  # packed 24 bit
        wide = _quantize(arr, scale, 0.0, -(2**23), 2**23 - 1, order + "i4").view(np.uint8).reshape(-1, 4)
        return np.ascontiguousarray(wide[:, :3] if order == "<" else wide[:, 1:]).tobytes()
    if dtype.kind == "f":
        return arr.astype(dtype).tobytes()
    info = np.iinfo(dtype)
    return _quantize(arr, scale, offset, info.min, info.max, dtype.str).tobytes()


def load_audio_msg_types(flavour: str) -> type:
    """Message class ``audio_common_msgs.msg.<flavour>``; flavour: AudioStamped, AudioDataStamped, AudioData.

    Raises :class:`ConversionError` naming what to install when it is missing, or when
    ``AudioData`` is the typed-array variant of ROS 2 audio_common instead of raw bytes.
    """
    if flavour not in AUDIO_MSG_TYPES:
        raise ConversionError(f"unknown audio message type {flavour!r} (supported: {', '.join(AUDIO_MSG_TYPES)})")
    distro = os.environ.get("ROS_DISTRO") or "<distro>"
    fixture = "test/fixtures/audio_common_msgs_" + ("mgonzs13" if flavour == "AudioStamped" else "ros_drivers")
    hint = f"install ros-{distro}-audio-common-msgs or build {fixture}"
    try:
        module = importlib.import_module("audio_common_msgs.msg")
    except ImportError as exc:
        raise ConversionError(f"audio_common_msgs.msg.{flavour} not found ({exc}): {hint}") from exc
    cls = getattr(module, flavour, None)
    if cls is None:
        raise ConversionError(
            f"audio_common_msgs.msg.{flavour} not found: the installed audio_common_msgs is the other flavour; {hint}"
        )
    if flavour == "AudioData" and "data" not in cls.get_fields_and_field_types():
        raise ConversionError(
            "audio_common_msgs.msg.AudioData here is the typed-array variant (ROS 2 audio_common): "
            "use AudioStamped, or " + hint
        )
    return cls
