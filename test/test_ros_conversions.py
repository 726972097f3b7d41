"""ROS message <-> NumPy conversions: images, compressed images, audio, stamps."""
import array
import importlib

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CompressedImage, Image

from avemo_ros.audio_codec import (
    PA_FLOAT32,
    PA_INT8,
    PA_INT16,
    PA_INT24,
    PA_INT32,
    PA_UINT8,
    AudioChunk,
    audio_bytes_to_chunk,
    audio_stamped_to_chunk,
    chunk_to_audio_data_bytes,
    chunk_to_audio_stamped,
    sample_width,
    UnsupportedAudio,
)
from avemo_ros.conversions import (
    ConversionError,
    ImageTooLarge,
    InvalidImage,
    UnsupportedImage,
    compressed_to_rgb,
    image_to_rgb,
    ns_to_stamp,
    rgb_to_compressed,
    rgb_to_image,
    stamp_to_ns,
    to_uint8_array,
    validate_image,
)
from avemo_ros.input_problems import Problem
from avemo_ros.ros.audio_input import load_audio_msg_types

pytestmark = pytest.mark.ros


def _audio_module():
    try:
        return importlib.import_module("audio_common_msgs.msg")
    except ImportError:
        return None


AUDIO_MSGS = _audio_module()
HAS_STAMPED = AUDIO_MSGS is not None and hasattr(AUDIO_MSGS, "AudioStamped")
HAS_ROS_DRIVERS = AUDIO_MSGS is not None and hasattr(AUDIO_MSGS, "AudioDataStamped")
_skip_unless_stamped = pytest.mark.skipif(
    not HAS_STAMPED,
    reason="audio_common_msgs.msg.AudioStamped not importable "
    "(ros_drivers flavour or not installed)"
)
needs_ros_drivers = pytest.mark.skipif(
    not HAS_ROS_DRIVERS,
    reason="audio_common_msgs.msg.AudioDataStamped not importable "
    "(mgonzs13 flavour or not installed)"
)


def needs_stamped(test):
    return pytest.mark.mgonzs13_audio(_skip_unless_stamped(test))

RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)


def make_image(encoding, height, width, step, data, bigendian=0):
    msg = Image()
    msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian = (
        encoding, height, width, step, bigendian)
    msg.data = array.array("B", bytes(data))
    return msg


# ----------------------------------------------------------------------------- images


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_colour_encodings_round_trip(encoding):
    msg = rgb_to_image(RGB, 123, "cam", encoding)
    assert msg.encoding == encoding and msg.header.frame_id == "cam"
    assert (msg.height, msg.width) == RGB.shape[:2]
    out = image_to_rgb(msg)
    assert out.dtype == np.uint8 and out.shape == RGB.shape and out.flags.c_contiguous
    np.testing.assert_array_equal(out, RGB)


def test_hand_built_bgr8_and_bgra8_pixels():
    bgr = make_image("bgr8", 1, 2, 6, [1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(image_to_rgb(bgr), [[[3, 2, 1], [6, 5, 4]]])
    bgra = make_image("bgra8", 1, 1, 4, [10, 20, 30, 99])
    np.testing.assert_array_equal(image_to_rgb(bgra), [[[30, 20, 10]]])
    rgba = make_image("rgba8", 1, 1, 4, [10, 20, 30, 99])
    np.testing.assert_array_equal(image_to_rgb(rgba), [[[10, 20, 30]]])


def test_mono8_and_mono16_give_grey_rgb():
    grey = cv2.cvtColor(RGB, cv2.COLOR_RGB2GRAY)
    for encoding in ("mono8", "mono16"):
        out = image_to_rgb(rgb_to_image(RGB, 0, "cam", encoding))
        for c in range(3):
            np.testing.assert_array_equal(out[..., c], grey)
    mono8 = make_image("mono8", 1, 3, 3, [0, 7, 255])
    np.testing.assert_array_equal(image_to_rgb(mono8)[0, :, 1], [0, 7, 255])


def test_mono16_endianness_scales_to_top_byte():
    values = np.array([[0x1234, 0xFF00, 0x00FF]], np.uint16)
    little = make_image("mono16", 1, 3, 6, values.astype("<u2").tobytes(), bigendian=0)
    big = make_image("mono16", 1, 3, 6, values.astype(">u2").tobytes(), bigendian=1)
    for msg in (little, big):
        np.testing.assert_array_equal(image_to_rgb(msg)[0, :, 0], [0x12, 0xFF, 0x00])


@pytest.mark.parametrize("encoding,bpp", [("rgb8", 3), ("bgra8", 4), ("mono8", 1), ("mono16", 2)])
def test_step_padding_is_skipped(encoding, bpp):
    height, width, pad = 4, 3, 5
    reference = rgb_to_image(RGB[:height, :width], 0, "cam", encoding)
    rows = np.frombuffer(bytes(reference.data), np.uint8).reshape(height, width * bpp)
    padded = np.concatenate([rows, np.full((height, pad), 0xAB, np.uint8)], axis=1)
    msg = make_image(encoding, height, width, width * bpp + pad, padded.tobytes())
    np.testing.assert_array_equal(image_to_rgb(msg), image_to_rgb(reference))
    # The last row's padding may be missing.
    msg.data = array.array("B", padded.tobytes()[:-pad])
    np.testing.assert_array_equal(image_to_rgb(msg), image_to_rgb(reference))


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8"])
@pytest.mark.parametrize("container", [bytes, bytearray, list, lambda b: array.array("B", b)])
def test_data_containers(container, encoding):
    ref = rgb_to_image(RGB, 0, "cam", encoding)
    msg = Image(height=ref.height, width=ref.width, encoding=encoding, step=ref.step)
    msg._data = container(bytes(ref.data))  # bypass the setter to feed each container type
    np.testing.assert_array_equal(image_to_rgb(msg), RGB)


@pytest.mark.parametrize("encoding", ["yuv422", "bayer_rggb8", "32FC1", "16UC1", ""])
def test_unsupported_encoding_is_named(encoding):
    msg = make_image(encoding, 1, 1, 4, [0, 0, 0, 0])
    with pytest.raises(ConversionError, match="unsupported image encoding") as err:
        image_to_rgb(msg)
    assert repr(encoding) in str(err.value)


@pytest.mark.parametrize("height,width", [(0, 4), (4, 0), (0, 0)])
def test_empty_image(height, width):
    with pytest.raises(ConversionError, match="empty image"):
        image_to_rgb(make_image("rgb8", height, width, width * 3, b""))


def test_oversized_image():
    msg = rgb_to_image(RGB, 0, "cam")
    with pytest.raises(ConversionError, match="too large.*max_pixels 20"):
        image_to_rgb(msg, max_pixels=20)
    assert image_to_rgb(msg, max_pixels=35).shape == RGB.shape


def test_inconsistent_data_length_and_step():
    msg = rgb_to_image(RGB, 0, "cam")
    short = make_image("rgb8", msg.height, msg.width, msg.step, bytes(msg.data)[:-1])
    with pytest.raises(ConversionError, match="data length"):
        image_to_rgb(short)
    long = make_image("rgb8", msg.height, msg.width, msg.step, bytes(msg.data) + b"\0")
    with pytest.raises(ConversionError, match="data length"):
        image_to_rgb(long)
    narrow = make_image("rgb8", msg.height, msg.width, msg.step - 1, bytes(msg.data))
    with pytest.raises(ConversionError, match="step"):
        image_to_rgb(narrow)


def test_validate_image_raises_typed_errors_without_converting():
    good = rgb_to_image(RGB, 0, "cam")
    validate_image(good)
    with pytest.raises(UnsupportedImage, match="yuv422") as exc:
        validate_image(make_image("yuv422", 1, 1, 2, [0, 0]))
    assert exc.value.problem is Problem.IMAGE_UNSUPPORTED
    short = make_image("rgb8", good.height, good.width, good.step, bytes(good.data)[:-3])
    with pytest.raises(InvalidImage, match="data length") as exc:
        validate_image(short)
    assert exc.value.problem is Problem.IMAGE_INVALID
    with pytest.raises(ImageTooLarge, match="too large") as exc:
        validate_image(good, max_pixels=10)
    assert exc.value.problem is Problem.IMAGE_TOO_LARGE
    with pytest.raises(InvalidImage, match="empty image"):
        validate_image(make_image("mono8", 0, 3, 3, b""))


def test_rgb_to_image_rejects_bad_arrays():
    with pytest.raises(ConversionError, match="uint8"):
        rgb_to_image(RGB.astype(np.float32), 0, "cam")
    with pytest.raises(ConversionError, match="unsupported image encoding"):
        rgb_to_image(RGB, 0, "cam", "yuv422")


def test_compressed_png_is_lossless_and_jpeg_close():
    smooth = np.zeros((32, 48, 3), np.uint8)
    smooth[..., 0] = 200
    smooth[..., 1] = np.linspace(0, 255, 48, dtype=np.uint8)
    smooth[..., 2] = 40
    png = rgb_to_compressed(smooth, Time(sec=3, nanosec=4), "cam", "png")
    assert png.format == "rgb8; png compressed bgr8" and png.header.stamp.sec == 3
    np.testing.assert_array_equal(compressed_to_rgb(png), smooth)
    jpeg = rgb_to_compressed(smooth, 0, "cam", "jpeg", quality=95)
    assert jpeg.format == "rgb8; jpeg compressed bgr8"
    out = compressed_to_rgb(jpeg)
    assert out.shape == smooth.shape
    assert np.abs(out.astype(int) - smooth).mean() < 3


def test_compressed_errors():
    msg = CompressedImage(format="jpeg")
    with pytest.raises(ConversionError, match="empty compressed image"):
        compressed_to_rgb(msg)
    msg.data = array.array("B", b"definitely not a jpeg")
    with pytest.raises(ConversionError, match="neither PNG nor JPEG"):
        compressed_to_rgb(msg)
    good = rgb_to_compressed(RGB, 0, "cam", "png")
    cut = CompressedImage(format="png", data=good.data[:40])  # header intact, pixels cut
    with pytest.raises(ConversionError, match="cannot decode"):
        compressed_to_rgb(cut)
    with pytest.raises(ConversionError, match="too large"):
        compressed_to_rgb(good, max_pixels=4)
    depth = CompressedImage(format="16UC1; compressedDepth png", data=good.data)
    with pytest.raises(ConversionError, match="compressedDepth"):
        compressed_to_rgb(depth)
    with pytest.raises(ConversionError, match="unsupported compression format"):
        rgb_to_compressed(RGB, 0, "cam", "webp")


def test_to_uint8_array_views_without_copy():
    data = array.array("B", b"\x01\x02\x03")
    view = to_uint8_array(data)
    data[0] = 9
    assert view[0] == 9  # shares memory with the message buffer
    np.testing.assert_array_equal(to_uint8_array([b"\x01", b"\x02"]), [1, 2])  # byte[] fields
    with pytest.raises(ConversionError):
        to_uint8_array([1, 300])


# ----------------------------------------------------------------------------- stamps


def test_stamp_conversions():
    assert stamp_to_ns(Time(sec=12, nanosec=345)) == 12_000_000_345
    t = ns_to_stamp(12_000_000_345)
    assert (t.sec, t.nanosec) == (12, 345)
    t = ns_to_stamp(-1)
    assert (t.sec, t.nanosec) == (-1, 999_999_999) and stamp_to_ns(t) == -1
    with pytest.raises(ConversionError, match="int32"):
        ns_to_stamp(2**31 * 1_000_000_000)


# ----------------------------------------------------------------------------- AudioStamped


FIELD = {
    PA_FLOAT32: "float32_data", PA_INT32: "int32_data", PA_INT24: "int24_data",
    PA_INT16: "int16_data", PA_INT8: "int8_data", PA_UINT8: "uint8_data",
}


def stamped(fmt, values, channels=1, rate=16000, stamp_ns=5_000_000_123):
    msg = AUDIO_MSGS.AudioStamped()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.audio.info.format, msg.audio.info.channels, msg.audio.info.rate = fmt, channels, rate
    setattr(msg.audio.audio_data, FIELD[fmt], values)
    return msg


@needs_stamped
@pytest.mark.parametrize(
    "fmt,values,expected",
    [
        (PA_FLOAT32, [-1.0, 0.0, 0.25, 2.0], [-1.0, 0.0, 0.25, 1.0]),  # clipped to [-1, 1]
        (PA_INT32, [-(2**31), 0, 2**30, 2**31 - 1], [-1.0, 0.0, 0.5, 1.0]),
        (PA_INT16, [-32768, 0, 16384, 32767], [-1.0, 0.0, 0.5, 1.0]),
        (PA_INT8, [-128, 0, 64, 127], [-1.0, 0.0, 0.5, 1.0]),
        (PA_UINT8, [0, 128, 192, 255], [-1.0, 0.0, 0.5, 1.0]),
    ],
)
def test_audio_stamped_formats(fmt, values, expected):
    chunk = audio_stamped_to_chunk(stamped(fmt, values))
    assert isinstance(chunk, AudioChunk)
    assert chunk.samples.dtype == np.float32 and chunk.samples.shape == (4, 1)
    assert chunk.sample_rate == 16000 and chunk.stamp_ns == 5_000_000_123
    np.testing.assert_allclose(chunk.samples[:, 0], expected, atol=1.0 / 127)
    assert chunk.samples.min() >= -1.0 and chunk.samples.max() <= 1.0


@needs_stamped
def test_audio_stamped_multichannel_is_interleaved():
    chunk = audio_stamped_to_chunk(
        stamped(PA_INT16, [1000, -1000, 2000, -2000, 3000, -3000], channels=2))
    assert chunk.samples.shape == (3, 2) and chunk.channels == 2
    np.testing.assert_allclose(chunk.samples[:, 0] * 32768, [1000, 2000, 3000])
    np.testing.assert_allclose(chunk.samples[:, 1] * 32768, [-1000, -2000, -3000])
    assert chunk.duration_ns == 3 * 1_000_000_000 // 16000


@needs_stamped
def test_audio_stamped_rejects_bad_messages():
    with pytest.raises(ConversionError, match="unknown sample format 3"):
        audio_stamped_to_chunk(_with_format(3))
    with pytest.raises(ConversionError, match="channels must be >= 1"):
        audio_stamped_to_chunk(stamped(PA_INT16, [1, 2], channels=0))
    with pytest.raises(ConversionError, match="sample rate must be > 0"):
        audio_stamped_to_chunk(stamped(PA_INT16, [1, 2], rate=0))
    with pytest.raises(ConversionError, match="empty audio data"):
        audio_stamped_to_chunk(stamped(PA_INT16, []))
    with pytest.raises(ConversionError, match="not a multiple of 2 channels"):
        audio_stamped_to_chunk(stamped(PA_INT16, [1, 2, 3], channels=2))
    with pytest.raises(ConversionError, match="expected an AudioStamped"):
        audio_stamped_to_chunk(Image())


def _duck_stamped(fmt, field, values):
    """An AudioStamped as rosbags deserializes it from an older audio_common bag."""
    from types import SimpleNamespace as NS_

    data = NS_(**{field: np.array(values, np.int32)})
    return NS_(header=NS_(stamp=Time(sec=1, nanosec=0)),
               audio=NS_(info=NS_(format=fmt, channels=1, rate=16000, chunk=len(values)),
                         audio_data=data))


@needs_stamped
def test_int24_is_refused_where_audio_common_dropped_it_and_read_where_a_bag_has_it():
    msg = stamped(PA_INT16, [1, 2])
    msg.audio.info.format = PA_INT24  # 4.0.x AudioData has no int24_data
    with pytest.raises(UnsupportedAudio, match="no int24_data field.*paInt16"):
        audio_stamped_to_chunk(msg)
    with pytest.raises(UnsupportedAudio, match="no int24_data"):
        chunk_to_audio_stamped(np.zeros(4), 16000, 0, "mic", AUDIO_MSGS, "int24")
    chunk = audio_stamped_to_chunk(
        _duck_stamped(PA_INT24, "int24_data", [-(2**23), 0, 2**22, 2**23 - 1]))
    np.testing.assert_allclose(chunk.samples[:, 0], [-1.0, 0.0, 0.5, 1.0], atol=1e-6)
    with pytest.raises(ConversionError, match="24-bit range"):
        audio_stamped_to_chunk(_duck_stamped(PA_INT24, "int24_data", [2**23]))


def _with_format(fmt):
    msg = stamped(PA_INT16, [1, 2])
    msg.audio.info.format = fmt
    return msg


@needs_stamped
def test_audio_stamped_nan_rejects_the_whole_chunk():
    values = [0.1, float("nan"), 0.2, float("inf"), 0.3]
    with pytest.raises(ConversionError, match="2 of 5 samples are NaN or Inf"):
        audio_stamped_to_chunk(stamped(PA_FLOAT32, values))


@needs_stamped
@pytest.mark.parametrize("fmt", ["float32", "int32", "int16", "int8", "uint8"])
@pytest.mark.parametrize("channels", [1, 2])
def test_chunk_to_audio_stamped_round_trip(fmt, channels):
    samples = RNG.uniform(-1, 1, size=(100, channels)).astype(np.float32)
    samples[0] = 1.0
    samples[1] = -1.0
    msg = chunk_to_audio_stamped(samples, 16000, 7_000_000_001, "mic", AUDIO_MSGS, fmt)
    assert msg.header.frame_id == "mic" and msg.audio.info.chunk == 100
    assert msg.audio.info.channels == channels and msg.audio.info.rate == 16000
    chunk = audio_stamped_to_chunk(msg)
    bits = {"float32": 30, "int32": 22, "int24": 23, "int16": 15, "int8": 7, "uint8": 7}[fmt]
    np.testing.assert_allclose(chunk.samples, samples, atol=1.0 / 2**bits)
    assert chunk.stamp_ns == 7_000_000_001


@needs_stamped
def test_chunk_to_audio_stamped_rejects_bad_input():
    with pytest.raises(ConversionError, match="NaN"):
        chunk_to_audio_stamped(np.array([0.0, np.nan]), 16000, 0, "mic", AUDIO_MSGS)
    with pytest.raises(ConversionError, match="unsupported AudioStamped format"):
        chunk_to_audio_stamped(np.zeros(4), 16000, 0, "mic", AUDIO_MSGS, "S16LE")
    with pytest.raises(ConversionError, match="empty"):
        chunk_to_audio_stamped(np.zeros(0), 16000, 0, "mic", AUDIO_MSGS)


@needs_stamped
def test_load_audio_msg_types_stamped_flavour():
    assert load_audio_msg_types("AudioStamped") is AUDIO_MSGS.AudioStamped
    for kind in ("AudioDataStamped", "AudioData"):  # names what is installed and what fits
        with pytest.raises(ConversionError,
                           match=f"{kind} is a ros_drivers .* installed audio_common_msgs "
                           "is the mgonzs13 flavour: set audio_msg_type:=AudioStamped"):
            load_audio_msg_types(kind)


@needs_ros_drivers
def test_load_audio_msg_types_ros_drivers_flavour():
    assert load_audio_msg_types("AudioDataStamped") is AUDIO_MSGS.AudioDataStamped
    assert load_audio_msg_types("AudioData") is AUDIO_MSGS.AudioData
    with pytest.raises(ConversionError,
                       match="the installed audio_common_msgs is the ros_drivers flavour: "
                       "set audio_msg_type:=AudioDataStamped or audio_msg_type:=AudioData"):
        load_audio_msg_types("AudioStamped")


def test_load_audio_msg_types_unknown_name():
    with pytest.raises(ConversionError, match="unknown audio message type"):
        load_audio_msg_types("Audio")


# ------------------------------------------------------------------------- raw bytes (ros_drivers)


@pytest.mark.parametrize(
    "fmt,raw,expected",
    [
        ("S16LE", np.array([-32768, 16384], "<i2").tobytes(), [-1.0, 0.5]),
        ("S16BE", np.array([-32768, 16384], ">i2").tobytes(), [-1.0, 0.5]),
        ("S32LE", np.array([-(2**31), 2**30], "<i4").tobytes(), [-1.0, 0.5]),
        ("S32BE", np.array([-(2**31), 2**30], ">i4").tobytes(), [-1.0, 0.5]),
        ("F32LE", np.array([-0.75, 0.5], "<f4").tobytes(), [-0.75, 0.5]),
        ("F32BE", np.array([-0.75, 0.5], ">f4").tobytes(), [-0.75, 0.5]),
        ("S24LE", bytes([0x00, 0x00, 0x80, 0x00, 0x00, 0x40]), [-1.0, 0.5]),
        ("S24BE", bytes([0x80, 0x00, 0x00, 0x40, 0x00, 0x00]), [-1.0, 0.5]),
        ("U8", bytes([0, 192]), [-1.0, 0.5]),
        ("S8", np.array([-128, 64], "i1").tobytes(), [-1.0, 0.5]),
    ],
)
def test_audio_bytes_formats(fmt, raw, expected):
    chunk = audio_bytes_to_chunk(raw, sample_format=fmt, channels=1, sample_rate=8000, stamp_ns=42)
    np.testing.assert_allclose(chunk.samples[:, 0], expected)
    assert chunk.sample_rate == 8000 and chunk.stamp_ns == 42 and chunk.samples.dtype == np.float32


@pytest.mark.parametrize("fmt", ["S16LE", "S16BE", "S24LE", "S24BE", "S32LE", "S32BE",
                                 "F32LE", "F32BE", "U8", "S8"])
def test_audio_bytes_round_trip_stereo(fmt):
    samples = RNG.uniform(-1, 1, size=(50, 2)).astype(np.float32)
    samples[0] = [-1.0, 1.0]
    raw = chunk_to_audio_data_bytes(samples, fmt)
    chunk = audio_bytes_to_chunk(
        array.array("B", raw), sample_format=fmt, channels=2, sample_rate=16000, stamp_ns=0
    )
    bits = 7 if fmt in ("U8", "S8") else 15
    assert chunk.samples.shape == (50, 2)
    np.testing.assert_allclose(chunk.samples, samples, atol=1.0 / 2**bits)


def test_s24_negative_values_sign_extend():
    raw = chunk_to_audio_data_bytes(np.array([-0.5, -(2.0**-23)]), "S24LE")
    assert raw == bytes([0x00, 0x00, 0xC0, 0xFF, 0xFF, 0xFF])
    chunk = audio_bytes_to_chunk(raw, sample_format="S24LE", channels=1, sample_rate=1000,
                                 stamp_ns=0)
    np.testing.assert_allclose(chunk.samples[:, 0], [-0.5, -(2.0**-23)])


def test_sample_width():
    assert ([sample_width(f) for f in ("U8", "S8", "S16LE", "S24BE", "S32LE", "F32BE")]
            == [1, 1, 2, 3, 4, 4])
    with pytest.raises(ConversionError, match="unsupported sample_format"):
        sample_width("AAC")


def test_audio_bytes_errors():
    kw = dict(channels=1, sample_rate=16000, stamp_ns=0)
    with pytest.raises(ConversionError, match="unsupported sample_format 'MP3'"):
        audio_bytes_to_chunk(b"\0\0", sample_format="MP3", **kw)
    with pytest.raises(ConversionError, match="whole number of 2-byte samples"):
        audio_bytes_to_chunk(b"\0\0\0", sample_format="S16LE", **kw)
    with pytest.raises(ConversionError, match="not a multiple of 2 channels"):
        audio_bytes_to_chunk(b"\0\0\0\0\0\0", sample_format="S16LE", channels=2,
                             sample_rate=16000, stamp_ns=0)
    with pytest.raises(ConversionError, match="empty audio data"):
        audio_bytes_to_chunk(b"", sample_format="S16LE", **kw)
    with pytest.raises(ConversionError, match="sample rate"):
        audio_bytes_to_chunk(b"\0\0", sample_format="S16LE", channels=1, sample_rate=0, stamp_ns=0)
    nan = np.array([0.0, np.nan, 0.5], "<f4").tobytes()
    with pytest.raises(ConversionError, match="1 of 3 samples are NaN"):
        audio_bytes_to_chunk(nan, sample_format="F32LE", **kw)
    with pytest.raises(ConversionError, match="NaN"):
        chunk_to_audio_data_bytes(np.array([np.inf]), "S16LE")


@needs_ros_drivers
def test_ros_drivers_audio_data_stamped_message_bytes():
    msg = AUDIO_MSGS.AudioDataStamped()
    msg.header.stamp = ns_to_stamp(9_000_000_000)
    msg.audio.data = array.array("B", chunk_to_audio_data_bytes(np.array([0.5, -0.5]), "S16LE"))
    chunk = audio_bytes_to_chunk(
        msg.audio.data, sample_format="S16LE", channels=1, sample_rate=16000,
        stamp_ns=stamp_to_ns(msg.header.stamp)
    )
    np.testing.assert_allclose(chunk.samples[:, 0], [0.5, -0.5])
    assert chunk.stamp_ns == 9_000_000_000


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16"])
def test_image_to_grey_equals_grey_of_rgb(encoding):
    from avemo_ros.face_frames import to_grey
    from avemo_ros.conversions import image_to_grey

    rgb = np.random.default_rng(3).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    msg = rgb_to_image(rgb, 0, "cam", encoding=encoding)
    np.testing.assert_array_equal(image_to_grey(msg), to_grey(image_to_rgb(msg)))
