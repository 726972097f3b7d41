"""~/debug_image over real DDS: the perception node in its own process, this test as camera,
microphone and (for the second half) viewer.

No subscriber: estimates flow, nothing is published (the node's ``debug_images_published``
counter on /diagnostics stays 0). A subscriber on ``~/debug_image`` and one on
``~/debug_image/compressed``: images arrive at no more than ``debug_rate_hz``, each stamped
with one of the camera frames' stamps (the one nearest an estimate's window end), with the
camera's frame_id and size.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from avemo_ros import audio_codec, conversions as conv  # noqa: E402
from avemo_ros.ros import harness as h  # noqa: E402

try:
    import audio_common_msgs.msg as acm
except ImportError:  # skipped below with the reason
    acm = None

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = Path(os.environ.get("AVEMO_TEST_BUNDLE", ROOT / "data" / "models" / "synthetic"))
NS = 1_000_000_000
RATE = 16000
CHUNK = 512
FPS = 30.0
HOP_S = 0.2  # five estimates a second: more than the debug rate below
DEBUG_RATE_HZ = 2.0
OWN_TOPICS = ("--remap", "audio:=audio", "--remap", "audio_info:=audio_info")

pytestmark = [
    pytest.mark.ros,
    pytest.mark.skipif(not (BUNDLE / "manifest.json").is_file(),
                       reason=f"no trained bundle at {BUNDLE}: run `make model` first"),
    pytest.mark.skipif(acm is None or not hasattr(acm, "AudioDataStamped"),
                       reason="needs the ros_drivers (released) audio_common_msgs: "
                       "scripts/rosenv.sh --audio-flavour ros_drivers"),
]


@pytest.fixture(scope="module")
def ros():
    rclpy.init()
    yield
    rclpy.shutdown()


def stream(frames, audio, base_ns):
    """(t, kind, msg) of one clip as camera (bgr8) + microphone (AudioDataStamped) deliver it."""
    from avemo_ros.clip_stream import VideoEvent, clips_events

    clip = SimpleNamespace(frames=frames, frame_times=np.arange(len(frames)) / FPS, audio=audio,
                           sample_rate=RATE)
    out, stamps = [], []
    for e in clips_events([clip], base_ns, chunk_samples=CHUNK, whole_chunks=True):
        t = (e.due_ns - base_ns) / NS
        if isinstance(e, VideoEvent):
            out.append((t, "image", conv.rgb_to_image(e.rgb, e.stamp_ns, "camera", "bgr8")))
            stamps.append(e.stamp_ns)
        else:
            msg = acm.AudioDataStamped()
            msg.header.stamp = conv.ns_to_stamp(e.stamp_ns)
            msg.header.frame_id = "microphone"
            msg.audio.data = audio_codec.chunk_to_audio_data_bytes(e.samples[:, 0], "S16LE")
            out.append((t, "audio", msg))
    return out, stamps


class Viewer:
    """Subscriptions to both debug topics on the driver's node; arrival times and messages."""

    def __init__(self, node, topic: str):
        self.raw, self.jpeg = [], []
        self._lock = threading.Lock()
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.subs = [node.create_subscription(Image, topic, self._on(self.raw), qos),
                     node.create_subscription(CompressedImage, topic + "/compressed",
                                              self._on(self.jpeg), qos)]

    def _on(self, into):
        def cb(msg):
            with self._lock:
                into.append((time.monotonic(), msg))
        return cb


def test_debug_image_only_while_subscribed_at_most_at_rate(ros):
    from training.synthetic import render_clip

    from avemo_ros.audio_features import resample

    frames, audio, rate = render_clip("happy", 20, duration_s=6.0, seed=3, intensity=2)
    audio = resample(audio, rate, RATE)
    height, width = frames.shape[1:3]
    proc = h.PerceptionProcess(BUNDLE, f"hop_s:={HOP_S}", f"debug_rate_hz:={DEBUG_RATE_HZ}",
                               runner_args=OWN_TOPICS)
    driver = h.Driver(acm.AudioDataStamped, name="debug_image_driver")
    try:
        assert driver.wait_subscribed(proc), "perception node never subscribed"
        topic = "/perception_node/debug_image"
        # 1. nobody subscribes: estimates, but no debug image
        events, _ = stream(frames[:120], audio[:4 * RATE], time.time_ns())
        h.publish_stream(driver, events)
        assert driver.wait_for(lambda: len(driver.estimates) >= 3, 10.0), proc.stop()[-3000:]
        time.sleep(1.5)  # one more /diagnostics
        counters = driver.last_counters()
        assert int(counters.get("windows_published", 0)) >= 3
        assert int(counters.get("debug_images_published", 0)) == 0, counters
        pub_counts = driver.node.count_publishers(topic)
        assert pub_counts == 1, "the node offers ~/debug_image"
        # 2. a viewer subscribes to both topics
        viewer = Viewer(driver.node, topic)
        assert driver.wait_for(lambda: driver.node.count_subscribers(topic) >= 1
                               and driver.node.count_subscribers(topic + "/compressed") >= 1,
                               10.0)
        time.sleep(1.0)  # discovery reaches the node's publishers
        n_before = len(driver.estimates)
        t_start = time.monotonic()
        events, stamps = stream(frames, audio, time.time_ns())
        h.publish_stream(driver, events)
        driver.wait_for(lambda: len(driver.estimates) >= n_before + int((6.0 - 3.0) / HOP_S),
                        10.0)
        time.sleep(0.5)
        t_end = time.monotonic()
        estimates = [m for _, m in driver.estimates[n_before:]]
    finally:
        driver.close()
        out = proc.stop()
    raw, jpeg = list(viewer.raw), list(viewer.jpeg)
    assert len(estimates) >= 10, out[-3000:]
    assert raw and jpeg, out[-3000:]
    for got in (raw, jpeg):
        arrivals = np.array([t for t, _ in got])
        assert t_start <= arrivals.min() and arrivals.max() <= t_end
        # at most the rate (transport jitter aside), over the whole run as between any two
        assert len(got) <= DEBUG_RATE_HZ * (arrivals[-1] - arrivals[0]) * 1.1 + 1, len(got)
        if len(arrivals) > 1:
            assert np.diff(arrivals).min() >= 1.0 / DEBUG_RATE_HZ - 0.1, np.diff(arrivals)
    assert len(raw) >= 4  # about 2 Hz over (at least) 3 s of estimates
    assert len(estimates) >= 2 * len(raw)  # the rate, not the estimates, limits them
    ends = np.array([conv.stamp_to_ns(m.header.stamp) for m in estimates])
    frame_stamps = np.array(stamps)
    for _, msg in raw + jpeg:
        stamp = conv.stamp_to_ns(msg.header.stamp)
        assert stamp in set(stamps), "stamped with a source frame's stamp"
        assert msg.header.frame_id == "camera"
        end = ends[np.argmin(np.abs(ends - stamp))]  # the estimate it shows
        nearest = frame_stamps[np.argmin(np.abs(frame_stamps - end))]
        assert abs(stamp - end) <= abs(nearest - end) + NS / FPS, "the frame nearest its end"
    for _, msg in raw:
        assert (msg.height, msg.width, msg.encoding) == (height, width, "rgb8")
        img = conv.image_to_rgb(msg)
        assert img.shape == (height, width, 3)
    for _, msg in jpeg:
        assert "jpeg" in msg.format
        assert conv.compressed_to_rgb(msg).shape == (height, width, 3)
