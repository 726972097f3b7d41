"""file_source node over real rclpy + DDS: pacing, stamps, transports, audio flavours."""
import importlib
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field

import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.exceptions import InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Bool

from avemo_ros import media
from avemo_ros.audio_codec import audio_bytes_to_chunk, audio_stamped_to_chunk
from avemo_ros.conversions import (
    compressed_to_rgb,
    image_to_rgb,
    ns_to_stamp,
    stamp_to_ns,
)
from avemo_ros.ros.file_source import FileSource, FileSourceError

pytestmark = pytest.mark.ros

NS = 1_000_000_000
DURATION_S, FPS, RATE = 1.5, 30, 16000


def _audio_msgs():
    try:
        return importlib.import_module("audio_common_msgs.msg")
    except ImportError:
        return None


AUDIO_MSGS = _audio_msgs()
HAS_STAMPED = AUDIO_MSGS is not None and hasattr(AUDIO_MSGS, "AudioStamped")
HAS_ROS_DRIVERS = AUDIO_MSGS is not None and hasattr(AUDIO_MSGS, "AudioDataStamped")
stamped_only = [
    pytest.mark.mgonzs13_audio,
    pytest.mark.skipif(not HAS_STAMPED,
                       reason="needs audio_common_msgs AudioStamped (mgonzs13 flavour)"),
]
NATIVE_AUDIO = [Parameter("audio_msg_type",
                          value="AudioStamped" if HAS_STAMPED else "AudioDataStamped")]
ros_drivers_only = [
    pytest.mark.skipif(not HAS_ROS_DRIVERS,
                       reason="needs audio_common_msgs AudioDataStamped (ros_drivers flavour)"),
]


@pytest.fixture(scope="module")
def clip_source(tmp_path_factory):
    """(media path or None, decoded clip): an mp4 when write_media exists, else an in-memory
    clip."""
    n = int(DURATION_S * FPS)
    frames = np.zeros((n, 48, 64, 3), np.uint8)
    frames[..., 0] = (np.arange(n) * 5)[:, None, None]
    frames[..., 1] = 100
    frames[..., 2] = 255 - (np.arange(n) * 5)[:, None, None]
    t = np.arange(int(DURATION_S * RATE)) / RATE
    audio = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[:, None]
    if hasattr(media, "write_media"):
        path = tmp_path_factory.mktemp("media") / "clip.mp4"
        media.write_media(path, frames, FPS, audio, RATE)
        return str(path), media.read_media(path)
    return None, media.MediaClip(frames, np.arange(n) / FPS, audio, RATE, "generated")


@pytest.fixture
def context():
    ctx = Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.try_shutdown(context=ctx)


@pytest.fixture
def ns():
    """A unique namespace, so concurrent test runs in the same ROS domain do not cross-talk."""
    return f"/avemo_test_{uuid.uuid4().hex[:8]}"


@dataclass
class Received:
    images: list = field(default_factory=list)  # (wall time, stamp ns, frame_id, rgb)
    # (wall time, stamp ns or None, frame_id, samples, rate)
    audio: list = field(default_factory=list)
    done: list = field(default_factory=list)
    info: list = field(default_factory=list)


class Sink(Node):
    """Subscribes to what file_source publishes and decodes it."""

    def __init__(self, context, ns, transport, audio_type, sample_format, image_qos):
        super().__init__("sink", namespace=ns, context=context)
        self.got = Received()
        self.audio_type, self.sample_format = audio_type, sample_format
        if transport == "raw":
            self.create_subscription(Image, "image", self._on_image, image_qos)
        else:
            self.create_subscription(CompressedImage, "image/compressed", self._on_image,
                                     image_qos)
        reliable = QoSProfile(depth=500, reliability=ReliabilityPolicy.RELIABLE)
        self.create_subscription(getattr(AUDIO_MSGS, audio_type), "audio", self._on_audio,
                                 reliable)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.create_subscription(Bool, "file_source/done",
                                 lambda m: self.got.done.append(m.data), latched)
        if audio_type != "AudioStamped":
            self.create_subscription(AUDIO_MSGS.AudioInfo, "audio_info", self.got.info.append,
                                     latched)

    def _on_image(self, msg):
        rgb = image_to_rgb(msg) if isinstance(msg, Image) else compressed_to_rgb(msg)
        self.got.images.append((time.time_ns(), stamp_to_ns(msg.header.stamp),
                                msg.header.frame_id, rgb))

    def _on_audio(self, msg):
        if self.audio_type == "AudioStamped":
            chunk = audio_stamped_to_chunk(msg)
            self.got.audio.append((time.time_ns(), chunk.stamp_ns, msg.header.frame_id,
                                   chunk.samples, chunk.sample_rate))
            return
        info = self.got.info[-1] if self.got.info else None
        rate = info.sample_rate if info else RATE
        stamp = stamp_to_ns(msg.header.stamp) if hasattr(msg, "header") else None
        data = msg.audio.data if hasattr(msg, "audio") else msg.data
        chunk = audio_bytes_to_chunk(data, sample_format=self.sample_format, channels=1,
                                     sample_rate=rate, stamp_ns=stamp or 0)
        frame_id = msg.header.frame_id if hasattr(msg, "header") else None
        self.got.audio.append((time.time_ns(), stamp, frame_id, chunk.samples, rate))


_STALL_METER = """
import sys, time
worst, total, last = 0.0, 0.0, time.monotonic()
while not sys.stdin.closed:
    time.sleep(0.002)
    now = time.monotonic()
    gap = now - last - 0.002
    if gap > 0.02:
        total += gap
    last = now
    if sys.stdin in __import__("select").select([sys.stdin], [], [], 0)[0]:
        break
print(f"{total:.4f}", flush=True)
"""


class StallMeter:
    """A process beside the test that sleeps 2 ms at a time and sums how much longer than
    20 ms it was kept waiting: time in which the machine ran no process of ours."""

    def __init__(self):
        self._proc = subprocess.Popen([sys.executable, "-c", _STALL_METER], text=True,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._result = None

    def stop(self) -> float:
        """Seconds of stall measured since the start (the first call ends the meter)."""
        if self._result is None:
            out, _ = self._proc.communicate("stop\n", timeout=10)
            self._result = float(out.strip() or 0.0)
        return self._result


def spin_until(executor, condition, timeout_s):
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.01)
    return condition()


def wait_for_graph(source, sink, image_topic, timeout_s=5.0):
    """Wait (without spinning) until both ends have discovered each other."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (source.count_subscribers(image_topic) and source.count_subscribers("audio")
                and sink.count_publishers(image_topic) and sink.count_publishers("audio")):
            return True
        time.sleep(0.01)
    return False


CASES = [
    pytest.param("raw", "rgb8", "AudioStamped", "int16", 1.0, 0, id="raw-rgb8-mgonzs13-int16",
                 marks=stamped_only),
    pytest.param("compressed", "rgb8", "AudioStamped", "float32", 2.0, 8000,
                 id="jpeg-stamped-float32-x2", marks=stamped_only),
    pytest.param("raw", "bgr8", "AudioDataStamped", "S16LE", 1.0, 0,
                 id="raw-bgr8-ros_drivers-S16LE", marks=ros_drivers_only),
    pytest.param("compressed", "rgb8", "AudioData", "S24LE", 2.0, 0,
                 id="jpeg-ros_drivers-AudioData-S24LE-x2", marks=ros_drivers_only),
]


@pytest.mark.parametrize("transport,encoding,audio_type,sample_format,rate,audio_rate", CASES)
def test_plays_clip_in_real_time(context, ns, clip_source, tmp_path, transport, encoding,
                                 audio_type, sample_format, rate, audio_rate):
    path, clip = clip_source
    image_topic = "image" if transport == "raw" else "image/compressed"
    image_qos = (QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
                 if transport == "raw"
                 else QoSProfile(depth=200, reliability=qos_profile_sensor_data.reliability))
    params = [
        Parameter("rate", value=rate),
        Parameter("image_transport", value=transport),
        Parameter("image_encoding", value=encoding),
        Parameter("audio_msg_type", value=audio_type),
        Parameter("audio_sample_format", value=sample_format),
        Parameter("audio_rate", value=audio_rate),
        Parameter("start_delay_s", value=0.3),
        Parameter("camera_frame_id", value="test_cam"),
    ]
    if path is not None:  # a missing file first: logged, skipped, the rest plays
        params.append(Parameter("media_paths", value=[str(tmp_path / "missing.mp4"), path]))
    sink = Sink(context, ns, transport, audio_type, sample_format, image_qos)
    source = FileSource(namespace=ns, context=context, parameter_overrides=params,
                        clips=None if path else [clip])
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(source)
    executor.add_node(sink)
    stall = StallMeter()
    try:
        assert wait_for_graph(source, sink, image_topic), \
            "file_source and the sink did not discover each other"
        clock_at_start = source.get_clock().now().nanoseconds
        span_s = clip.duration / rate
        assert spin_until(executor, lambda: True in sink.got.done, timeout_s=span_s + 8.0), \
            "no ~/done"
        spin_until(executor, lambda: False, timeout_s=0.1)  # drain messages still in flight
    finally:
        executor.shutdown()
        source.destroy_node()
        sink.destroy_node()
        stall.stop()
    got = sink.got
    n_frames = len(clip.frame_times)

    # Frames: all of them (reliable) or nearly all (best-effort subscription), in order.
    if transport == "raw":
        assert len(got.images) == n_frames
    else:
        assert n_frames * 0.8 <= len(got.images) <= n_frames
    frame_stamps = np.array([s for _, s, _, _ in got.images])
    assert np.all(np.diff(frame_stamps) > 0)
    assert {f for _, _, f, _ in got.images} == {"test_cam"}
    start_ns = frame_stamps[0] - round(clip.frame_times[0] * NS)
    # node clock + start delay
    assert clock_at_start + 0.25 * NS <= start_ns <= clock_at_start + 2 * NS
    expected = np.rint(clip.frame_times * NS).astype(np.int64)
    idx = np.searchsorted(expected, frame_stamps - start_ns)
    # stamp - start == frame time
    np.testing.assert_array_equal(frame_stamps - start_ns, expected[idx])
    for (_, _, _, rgb), i in zip(got.images, idx):
        diff = np.abs(rgb.astype(int) - clip.frames[i]).mean()
        assert diff == 0 if transport == "raw" else diff < 8

    # Audio: every sample exactly once, contiguous stamps aligned with the video.
    out_rate = audio_rate or clip.sample_rate
    n_expected = (clip.audio.shape[0] if not audio_rate
                  else -(-clip.audio.shape[0] * audio_rate // clip.sample_rate))
    samples = np.concatenate([a for _, _, _, a, _ in got.audio])
    assert samples.shape[0] == n_expected
    assert {r for *_, r in got.audio} == {out_rate}
    if not audio_rate:
        tol = 1e-7 if sample_format == "float32" else 1.0 / 2**15
        np.testing.assert_allclose(samples, clip.audio, atol=tol)
    if audio_type != "AudioData":
        stamps = np.array([s for _, s, _, _, _ in got.audio])
        offsets = np.concatenate([[0],
                                  np.cumsum([a.shape[0] for _, _, _, a, _ in got.audio])[:-1]])
        np.testing.assert_allclose(stamps - start_ns, offsets * NS / out_rate, atol=1)
        assert {f for _, _, f, _, _ in got.audio} == {"microphone"}
    else:
        assert (got.info and got.info[-1].sample_format == sample_format
                and got.info[-1].channels == 1)

    # Pacing, on the node clock (ROS time = system time here): no message arrives before it
    # is due (frame: its media time; audio chunk: the media time of its last sample, as a
    # microphone delivers it), and the last one is late by no more than 0.4 s plus the time
    # this machine did not schedule a process (measured beside the test).
    received = np.array([t for t, *_ in got.images] + [t for t, *_ in got.audio])
    chunk_ends = np.cumsum([a.shape[0] for _, _, _, a, _ in got.audio]) * NS / out_rate
    media_ns = np.concatenate([frame_stamps - start_ns, chunk_ends])
    due = start_ns + media_ns / rate
    early_ms = (due - received).max() / 1e6
    assert early_ms <= 3.0, f"a message arrived {early_ms:.1f} ms before it was due at x{rate}"
    late_s = (received.max() - due[np.argmax(media_ns)]) / NS
    stalled_s = stall.stop()
    assert late_s <= 0.4 + stalled_s, \
        f"played {clip.duration:.2f} s at x{rate}: the last message came {late_s:.2f} s late " \
        f"(the machine stalled processes for {stalled_s:.2f} s)"


def test_parameters_are_validated(context, clip_source):
    _, clip = clip_source
    overrides = NATIVE_AUDIO + [Parameter("loop", value=True)]
    source = FileSource(context=context, clips=[clip], parameter_overrides=overrides)
    try:
        assert source.playback is not None and source.playback.loop
        result = source.set_parameters([Parameter("rate", value=-1.0)])[0]
        assert not result.successful and "rate" in result.reason
        result = source.set_parameters([Parameter("image_transport", value="compressed")])[0]
        assert not result.successful  # read-only after start-up
        assert source.set_parameters([Parameter("rate", value=2.5)])[0].successful
        assert source.get_parameter("rate").value == 2.5
        assert source.set_parameters([Parameter("loop", value=False)])[0].successful
        assert not source.playback.loop
        desc = source.describe_parameter("audio_chunk_s")
        assert desc.description and desc.floating_point_range[0].to_value == 1.0
    finally:
        source.destroy_node()
    bad = [
        [Parameter("image_transport", value="theora")],
        [Parameter("audio_msg_type", value="AudioStamped"),
         Parameter("audio_sample_format", value="S16LE")],
        [Parameter("audio_rate", value=500)],
    ]
    for overrides in bad:
        with pytest.raises(InvalidParameterValueException):
            FileSource(context=context, clips=[clip], parameter_overrides=overrides)
    with pytest.raises(FileSourceError, match="media_paths is empty"):
        FileSource(context=context, parameter_overrides=NATIVE_AUDIO)


def test_unplayable_playlist_reports_done(context, tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all")
    source = FileSource(context=context, parameter_overrides=NATIVE_AUDIO + [
        Parameter("media_paths", value=[str(junk), str(tmp_path / "missing.mkv")])])
    try:
        assert source.finished and source.playback is None
    finally:
        source.destroy_node()


def test_stamps_follow_sim_time(context, ns, clip_source):
    """With use_sim_time, stamps start at the simulated clock and playback follows /clock."""
    _, clip = clip_source
    audio_type = NATIVE_AUDIO[0].value
    sink = Sink(context, ns, "raw", audio_type, "S16LE",
                QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE))
    clock_node = Node("sim_clock", context=context)
    clock_pub = clock_node.create_publisher(Clock, f"{ns}/clock", 10)  # a private /clock
    source = FileSource(namespace=ns, context=context, clips=[clip],
                        parameter_overrides=NATIVE_AUDIO + [
                            Parameter("use_sim_time", value=True), Parameter("rate", value=1.0)],
                        cli_args=["--ros-args", "-r", f"/clock:={ns}/clock"])
    executor = SingleThreadedExecutor(context=context)
    for node in (source, sink, clock_node):
        executor.add_node(node)
    sim_ns = 100 * NS
    try:
        assert wait_for_graph(source, sink, "image")
        deadline = time.monotonic() + 10.0
        while True not in sink.got.done and time.monotonic() < deadline:
            clock_pub.publish(Clock(clock=ns_to_stamp(sim_ns)))
            sim_ns += 10_000_000  # 10 ms of sim time per ~2 ms of wall time
            executor.spin_once(timeout_sec=0.002)
        assert True in sink.got.done
        spin_until(executor, lambda: False, timeout_s=0.1)
    finally:
        executor.shutdown()
        for node in (source, sink, clock_node):
            node.destroy_node()
    stamps = np.array([s for _, s, _, _ in sink.got.images])
    assert len(stamps) == len(clip.frame_times)
    assert 100 * NS <= stamps[0] < 101 * NS  # the simulated clock, not the wall clock
    np.testing.assert_array_equal(stamps - stamps[0],
                                  np.rint(clip.frame_times * NS).astype(np.int64))
    wall_s = (max(t for t, *_ in sink.got.images) - min(t for t, *_ in sink.got.images)) / NS
    assert wall_s < clip.duration * 0.8  # sim time ran faster than the wall clock


def test_rate_change_while_playing_keeps_the_position(context, ns, clip_source):
    _, clip = clip_source
    audio_type = NATIVE_AUDIO[0].value
    sink = Sink(context, ns, "raw", audio_type, "S16LE",
                QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE))
    source = FileSource(namespace=ns, context=context, clips=[clip],
                        parameter_overrides=NATIVE_AUDIO)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(source)
    executor.add_node(sink)
    try:
        assert wait_for_graph(source, sink, "image")
        assert spin_until(executor, lambda: len(sink.got.images) >= 15, timeout_s=5.0)  # 0.5 s in
        t_change = time.monotonic()
        assert source.set_parameters([Parameter("rate", value=4.0)])[0].successful
        assert spin_until(executor, lambda: True in sink.got.done, timeout_s=5.0)
        t_done = time.monotonic()
        spin_until(executor, lambda: False, timeout_s=0.1)
    finally:
        executor.shutdown()
        source.destroy_node()
        sink.destroy_node()
    remaining_s = clip.duration - 15 / FPS
    assert remaining_s / 4 - 0.1 <= t_done - t_change <= remaining_s / 4 + 0.3
    stamps = np.array([s for _, s, _, _ in sink.got.images])
    assert len(stamps) == len(clip.frame_times)  # nothing skipped or repeated at the change
    np.testing.assert_array_equal(stamps - stamps[0],
                                  np.rint(clip.frame_times * NS).astype(np.int64))
