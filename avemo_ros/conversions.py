"""Conversions between ROS messages and NumPy: images, stamps, byte buffers.

Images become ``(H, W, 3)`` uint8 RGB arrays (audio: :mod:`avemo_ros.audio_codec`).

The message -> NumPy functions duck-type their input, so they take rclpy messages and
messages deserialized by ``rosbags`` (whose ``uint8[]`` fields are NumPy arrays) alike,
and work without ROS installed; building messages needs the rclpy message packages.
"""
from __future__ import annotations

import array
from typing import Any, Union

import cv2
import numpy as np

from .image_headers import compressed_size
from .input_problems import InputError, Problem

try:  # rclpy message classes are needed to BUILD messages; reading works without them
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import CompressedImage, Image
except ImportError:  # e.g. offline evaluation of rosbags-deserialized messages, no ROS installed
    Time = CompressedImage = Image = None  # type: ignore[assignment,misc]

__all__ = [
    "ConversionError",
    "DEFAULT_MAX_PIXELS",
    "ImageTooLarge",
    "InvalidImage",
    "UnsupportedImage",
    "check_compressed",
    "validate_image",
    "IMAGE_ENCODINGS",
    "compressed_to_rgb",
    "image_to_grey",
    "image_to_rgb",
    "ns_to_stamp",
    "rgb_to_compressed",
    "rgb_to_image",
    "stamp_to_ns",
    "as_stamp",
    "filled_array",
    "to_uint8_array",
    "typed_array",
]


class ConversionError(InputError):
    """A message cannot be converted (unsupported encoding, malformed data, ...)."""


class UnsupportedImage(ConversionError):
    """An image encoding or compression format this package does not read."""

    problem = Problem.IMAGE_UNSUPPORTED


class InvalidImage(ConversionError):
    """A malformed image: empty, wrong data length or step, not decodable."""

    problem = Problem.IMAGE_INVALID


class ImageTooLarge(ConversionError):
    """An image with more pixels than allowed (checked before any pixel is copied)."""

    problem = Problem.IMAGE_TOO_LARGE


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
        raise ConversionError(
            f"building a {name} message needs the ROS 2 Python message packages (rclpy)")
    return cls


def ns_to_stamp(ns: int) -> Time:
    """``builtin_interfaces/Time`` for integer nanoseconds (``sec`` must fit in int32)."""
    sec, nanosec = divmod(int(ns), _NS_PER_S)
    if not _INT32_MIN <= sec <= _INT32_MAX:
        raise ConversionError(f"time {ns} ns does not fit builtin_interfaces/Time (int32 seconds)")
    return _ros_class(Time, "builtin_interfaces/Time")(sec=sec, nanosec=nanosec)


def as_stamp(stamp: Any) -> Time:
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
            raise ConversionError(
                f"byte data must be an array of bytes, got typecode {data.typecode!r}")
        return np.frombuffer(data, dtype=np.uint8)
    if isinstance(data, (list, tuple)):
        if data and isinstance(data[0], (bytes, bytearray)):
            return np.frombuffer(b"".join(data), dtype=np.uint8)
        try:
            return np.asarray(data, dtype=np.uint8)
        except (OverflowError, TypeError, ValueError) as exc:
            raise ConversionError(
                f"byte data is not a sequence of values in [0, 255]: {exc}") from exc
    raise ConversionError(f"unsupported byte data container {type(data).__name__}")


def typed_array(data: Any, dtype: np.dtype) -> np.ndarray:
    """A 1-D view of a typed sequence field (``array.array`` or list) as ``dtype``."""
    if isinstance(data, array.array):
        if np.dtype(data.typecode) != dtype:
            raise ConversionError(
                f"expected {dtype} samples, got array typecode {data.typecode!r}")
        return np.frombuffer(data, dtype=dtype)
    if isinstance(data, np.ndarray):
        return data.reshape(-1).astype(dtype, copy=False)
    try:
        return np.asarray(data, dtype=dtype).reshape(-1)
    except (OverflowError, TypeError, ValueError) as exc:
        raise ConversionError(f"samples are not {dtype} values: {exc}") from exc


def filled_array(typecode: str, values: np.ndarray) -> array.array:
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
        raise InvalidImage(f"empty image: {width}x{height}")
    if height * width > max_pixels:
        raise ImageTooLarge(f"image too large: {width}x{height} = {height * width} pixels "
                              f"> max_pixels {max_pixels}")


def _image_layout(msg: Image, max_pixels: int) -> tuple[str, int, int, np.ndarray]:
    """Validate an Image; return (encoding, channels, bytes per channel, data as uint8)."""
    encoding = str(msg.encoding).strip().lower()
    if encoding not in IMAGE_ENCODINGS:
        raise UnsupportedImage(
            f"unsupported image encoding {msg.encoding!r} "
            f"(supported: {', '.join(IMAGE_ENCODINGS)})"
        )
    channels, depth = IMAGE_ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    _check_size(height, width, max_pixels)
    row_bytes = width * channels * depth
    if step < row_bytes:
        raise InvalidImage(
            f"image step {step} is smaller than a {encoding} row of {width} pixels "
            f"({row_bytes} bytes)"
        )
    buf = to_uint8_array(msg.data)
    need = (height - 1) * step + row_bytes
    if not need <= buf.size <= height * step:
        raise InvalidImage(
            f"image data length {buf.size} does not match {width}x{height} {encoding} "
            f"with step {step} (expected {height * step} bytes)"
        )
    return encoding, channels, depth, buf


def validate_image(msg: Image, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Raise what ``image_to_rgb`` would raise for ``msg`` (typed: UnsupportedImage,
    InvalidImage, ImageTooLarge); cheap, no pixel copy."""
    _image_layout(msg, max_pixels)


def check_compressed(msg: CompressedImage, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Check a CompressedImage without decoding it: format, data, and the pixel count its
    PNG / JPEG header announces (a small file may decode to a huge image)."""
    fmt = str(msg.format)
    if "compresseddepth" in fmt.lower().replace(" ", ""):
        raise UnsupportedImage(
            f"unsupported compressed format {fmt!r}: compressedDepth is for depth images")
    buf = to_uint8_array(msg.data)
    if buf.size == 0:
        raise InvalidImage(f"empty compressed image (format {fmt!r})")
    size = compressed_size(buf)
    if size is None:
        raise InvalidImage(f"compressed image of {buf.size} bytes is neither PNG nor JPEG "
                           f"(no readable header; format {fmt!r})")
    _check_size(size[1], size[0], max_pixels)


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
        shape=(height, width, channels), dtype=dtype, buffer=buf,
        strides=(step, channels * depth, depth)
    )
    if encoding == "rgb8":
        return view.copy()
    if encoding == "mono16":  # keep the top 8 bits
        return cv2.cvtColor((view[..., 0] >> 8).astype(np.uint8), cv2.COLOR_GRAY2RGB)
    # OpenCV reads the row-strided view directly (much faster than NumPy channel reversal).
    src = view[..., 0] if encoding == "mono8" else view
    return cv2.cvtColor(src, _TO_RGB[encoding])


_TO_GREY = {"rgb8": cv2.COLOR_RGB2GRAY, "bgr8": cv2.COLOR_BGR2GRAY,
            "rgba8": cv2.COLOR_RGBA2GRAY, "bgra8": cv2.COLOR_BGRA2GRAY}


def image_to_grey(msg: Image, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """``sensor_msgs/Image`` -> ``(H, W)`` uint8 grey, straight from the message buffer
    (no RGB copy in between; the same values as ``to_grey(image_to_rgb(msg))``)."""
    encoding, channels, depth, buf = _image_layout(msg, max_pixels)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    dtype = np.dtype(np.uint8) if depth == 1 else np.dtype(">u2" if msg.is_bigendian else "<u2")
    view = np.ndarray(shape=(height, width, channels), dtype=dtype, buffer=buf,
                      strides=(step, channels * depth, depth))
    if encoding == "mono8":
        return view[..., 0].copy()
    if encoding == "mono16":
        return (view[..., 0] >> 8).astype(np.uint8)
    return cv2.cvtColor(view, _TO_GREY[encoding])


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ConversionError(
            f"expected an (H, W, 3) uint8 RGB array, got {arr.dtype} {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ConversionError(f"empty image: {arr.shape[1]}x{arr.shape[0]}")
    return arr


_FROM_RGB = {
    "bgr8": cv2.COLOR_RGB2BGR,
    "rgba8": cv2.COLOR_RGB2RGBA,  # opaque alpha
    "bgra8": cv2.COLOR_RGB2BGRA,
    "mono8": cv2.COLOR_RGB2GRAY,
}


def rgb_to_image(rgb: np.ndarray, stamp: StampLike, frame_id: str,
                 encoding: str = "rgb8") -> Image:
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
    msg.header.stamp = as_stamp(stamp)
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(arr.shape[0]), int(arr.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(pixels.strides[0])
    msg.data = filled_array("B", pixels)
    return msg


_COMPRESSED_EXT = {"jpeg": ".jpg", "jpg": ".jpg", "png": ".png"}


def compressed_to_rgb(msg: CompressedImage, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """``sensor_msgs/CompressedImage`` (jpeg/png) -> ``(H, W, 3)`` uint8 RGB.

    The header is checked first (:func:`check_compressed`): nothing over ``max_pixels``
    is ever decoded.
    """
    check_compressed(msg, max_pixels)
    fmt = str(msg.format)
    buf = to_uint8_array(msg.data)
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None:
        raise InvalidImage(
            f"cannot decode compressed image of {buf.size} bytes (format {fmt!r})")
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
    msg.header.stamp = as_stamp(stamp)
    msg.header.frame_id = frame_id
    msg.format = f"rgb8; {'jpeg' if key == 'jpg' else key} compressed bgr8"
    msg.data = filled_array("B", encoded)
    return msg
