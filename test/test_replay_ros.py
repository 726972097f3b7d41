"""Bag replay over real DDS: player timing, /clock, loop, and live vs offline agreement."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, qos_profile_sensor_data  # noqa: E402
from rclpy.serialization import serialize_message  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Bool, Int32  # noqa: E402

from avemo_ros.ros.bag_player import LATCHED_QOS, BagPlayer  # noqa: E402

NS = 1_000_000_000
BASE_NS = 1_700_000_000 * NS  # bag time of the first message
CHATTER_S = (0.0, 0.05, 0.3, 0.31, 0.9, 1.2, 1.5, 1.95, 2.0)

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def ros():
    rclpy.init()
    yield
    rclpy.shutdown()


def write_timing_bag(path: Path, seconds: float = 2.0, fps: float = 25.0,
                     chatter_s=CHATTER_S) -> list[tuple[str, int]]:
    """A bag with /cam (4x4 Image at ``fps``) and /chatter (Int32 = index, irregular times).

    Serialized by rclpy (as rosbag2 stores it), written with rosbags. Returns (topic, log ns).
    """
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.LATEST)
    events = []
    for i in range(int(round(seconds * fps)) + 1):
        t = BASE_NS + int(round(i * NS / fps))
        img = Image(height=4, width=4, encoding="mono8", step=4, data=bytes(range(16)))
        img.header.stamp.sec, img.header.stamp.nanosec = divmod(t, NS)
        img.header.frame_id = str(i)
        events.append(("/cam", t, serialize_message(img)))
    for i, s in enumerate(chatter_s):
        events.append(("/chatter", BASE_NS + int(round(s * NS)), serialize_message(Int32(data=i))))
    events.sort(key=lambda e: e[1])
    with Writer(path, version=9) as w:
        conns = {"/cam": w.add_connection("/cam", "sensor_msgs/msg/Image", typestore=store),
                 "/chatter": w.add_connection("/chatter", "std_msgs/msg/Int32", typestore=store)}
        for topic, t, raw in events:
            w.write(conns[topic], t, raw)
    return [(topic, t) for topic, t, _ in events]


class Listener:
    """Test node on its own executor thread: records arrival (monotonic) of everything played."""

    def __init__(self, name: str = "replay_listener", done_topic: str = "/bag_player/done"):
        self.node = Node(name)
        self.lock = threading.Lock()
        self.cam: list[tuple[float, int]] = []  # arrival, stamp ns
        self.chatter: list[tuple[float, int]] = []  # arrival, data
        self.clock: list[tuple[float, int]] = []  # arrival, clock ns
        self.done: list[bool] = []
        n = self.node
        n.create_subscription(Image, "/cam", self._on_cam, qos_profile_sensor_data)
        n.create_subscription(Int32, "/chatter", self._on_chatter, QoSProfile(depth=100))
        n.create_subscription(Clock, "/clock", self._on_clock, QoSProfile(depth=100))
        n.create_subscription(Bool, done_topic, self._on_done, LATCHED_QOS)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(n)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self):
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.02)

    def _on_cam(self, msg):
        with self.lock:
            stamp_ns = msg.header.stamp.sec * NS + msg.header.stamp.nanosec
            self.cam.append((time.monotonic(), stamp_ns))

    def _on_chatter(self, msg):
        with self.lock:
            self.chatter.append((time.monotonic(), msg.data))

    def _on_clock(self, msg):
        with self.lock:
            self.clock.append((time.monotonic(), msg.clock.sec * NS + msg.clock.nanosec))

    def _on_done(self, msg):
        with self.lock:
            self.done.append(bool(msg.data))

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.executor.shutdown()
        self.node.destroy_node()


def wait_for(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def spin_player(player: BagPlayer):
    """Spin the player's parameter services in a thread; returns a stop function."""
    ex = SingleThreadedExecutor()
    ex.add_node(player)
    stop = threading.Event()

    def run():
        while not stop.is_set():
            ex.spin_once(timeout_sec=0.02)

    th = threading.Thread(target=run, daemon=True)
    th.start()

    def close():
        stop.set()
        th.join(2)
        ex.shutdown()
        player.destroy_node()
    return close


def player_for(bag: Path, **params) -> BagPlayer:
    args = ["--ros-args", "-p", "wait_for_subscribers_s:=10.0"]
    for k, v in params.items():
        args += ["-p", f"{k}:={str(v).lower() if isinstance(v, bool) else v}"]
    return BagPlayer(bag_paths=[str(bag)], cli_args=args)


def residuals_ms(arrival_s: np.ndarray, bag_s: np.ndarray,
                 rate: float) -> tuple[float, np.ndarray]:
    """Slope of arrival vs bag time and the residuals (ms) around arrival = t0 + bag/rate."""
    slope = np.polyfit(bag_s, arrival_s, 1)[0]
    res = arrival_s - bag_s / rate
    return float(slope), (res - np.median(res)) * 1e3


@pytest.mark.parametrize("rate", [1.0, 2.0])
def test_player_timing_and_clock(ros, tmp_path, rate):
    bag = tmp_path / "timing"
    write_timing_bag(bag)
    listener = Listener(f"timing_listener_{int(rate)}")
    player = player_for(bag, rate=rate, publish_clock=True)
    close = spin_player(player)
    try:
        assert wait_for(lambda: True in listener.done, 10.0 + 2.0 / rate), "player never finished"
        time.sleep(0.2)  # the last /clock ticks
    finally:
        close()
        listener.close()
    # every chatter message, in order, at its bag time / rate
    data = [d for _, d in listener.chatter]
    assert data == list(range(len(CHATTER_S)))
    arr = np.array([a for a, _ in listener.chatter])
    slope, res = residuals_ms(arr, np.array(CHATTER_S), rate)
    assert abs(slope * rate - 1.0) < 0.03, slope
    assert np.median(np.abs(res)) < 10.0 and np.max(np.abs(res)) < 100.0, res
    # camera frames (best effort) in stamp order, paced like the bag
    stamps = np.array([s for _, s in listener.cam])
    assert len(stamps) >= 0.9 * 51
    assert np.all(np.diff(stamps) > 0)
    cam_arr = np.array([a for a, _ in listener.cam])
    slope, res = residuals_ms(cam_arr, (stamps - BASE_NS) / NS, rate)
    assert abs(slope * rate - 1.0) < 0.03, slope
    assert np.percentile(np.abs(res), 95) < 25.0, res
    # /clock: ~100 Hz, non-decreasing, from the bag's start through its end (and on while the
    # player lives), advancing at rate x wall time
    clock = np.array([c for _, c in listener.clock])
    clock_arr = np.array([a for a, _ in listener.clock])
    assert len(clock) >= 0.5 * 100 * 2.0 / rate
    assert np.all(np.diff(clock) >= 0)
    assert clock[0] <= BASE_NS + NS // 10 and clock[-1] >= BASE_NS + 2 * NS
    slope = np.polyfit(clock_arr, clock / NS, 1)[0]
    assert abs(slope / rate - 1.0) < 0.05, slope
    # the sim time at each chatter arrival is (nearly) the bag time it was recorded at
    at = np.interp(arr, clock_arr, clock) - BASE_NS
    assert np.max(np.abs(at / NS - np.array(CHATTER_S))) < 0.05 * rate
    assert listener.done[0] is False and listener.done[-1] is True


def test_player_loops_until_loop_is_cleared(ros, tmp_path):
    bag = tmp_path / "loop"
    chatter = (0.0, 0.2, 0.4)
    write_timing_bag(bag, seconds=0.5, chatter_s=chatter)
    listener = Listener("loop_listener")
    player = player_for(bag, loop=True, rate=2.0)
    close = spin_player(player)
    try:
        assert wait_for(lambda: len(listener.chatter) >= 3 * len(chatter), 15.0)
        assert not listener.done or listener.done[-1] is False  # never done while looping
        player.set_parameters([Parameter("loop", Parameter.Type.BOOL, False)])
        assert wait_for(lambda: True in listener.done, 10.0)
        passes = player.passes + 1
    finally:
        close()
        listener.close()
    data = [d for _, d in listener.chatter]
    assert passes >= 3
    assert data == [0, 1, 2] * passes  # whole passes, in order, nothing lost
    # the camera stamps restart at each pass: the bag's header stamps are replayed as is
    stamps = [s for _, s in listener.cam]
    assert sum(1 for a, b in zip(stamps, stamps[1:]) if b < a) == passes - 1


# ----------------------------------------------------------------------------- live vs offline

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = Path(__import__("os").environ.get("AVEMO_TEST_BUNDLE",
                                           ROOT / "data" / "models" / "synthetic"))
DEMO = ROOT / "data" / "demo"


def demo_clip_paths(tmp_path: Path, n: int = 4) -> list[Path]:
    """Held-out synthetic clips (actor 20): data/demo after `make demo`, else rendered here."""
    paths = sorted(DEMO.glob("*.mp4"))[:n]
    if len(paths) < n:
        from training.demo_clips import write_demo_clips

        paths = write_demo_clips(tmp_path / "clips")[:n]
    return paths


def clips_to_bag(clips: list[Path], bag: Path, base_ns: int = BASE_NS,
                 chunk_s: float = 0.032) -> float:
    """Clips back to back as one camera + microphone bag with per-clip ground truth; seconds."""
    from avemo_ros.bags import AudioStreamChunk, Frame, TruthSegment, write_bag
    from avemo_ros.media import read_media

    frames, chunks, truth, t0 = [], [], [], base_ns
    for path in clips:
        clip = read_media(path)
        for t, rgb in zip(clip.frame_times, clip.frames):
            frames.append(Frame(t0 + int(round(t * NS)), rgb))
        step = int(round(chunk_s * clip.sample_rate))
        for a in range(0, len(clip.audio) - step + 1, step):
            chunks.append(AudioStreamChunk(t0 + int(round(a * NS / clip.sample_rate)),
                                           clip.audio[a:a + step], clip.sample_rate))
        span = int(round(min(clip.video_duration, clip.audio_duration) * NS))
        truth.append(TruthSegment(path.name, t0, t0 + span, path.stem.rsplit("_", 1)[-1]))
        t0 += span
    write_bag(bag, frames, chunks, truth=truth)
    return (t0 - base_ns) / NS


@pytest.mark.skipif(not (BUNDLE / "manifest.json").is_file(),
                    reason=f"no trained bundle at {BUNDLE}: run `make model` first")
def test_live_replay_agrees_with_offline(tmp_path):
    import json
    import subprocess
    import sys

    from avemo_ros.evaluation import agreement, read_windows_csv
    from avemo_ros.offline import evaluate_bags
    from avemo_ros.ros.harness import ros_env

    hop = 0.5
    bag = tmp_path / "demo_bag"
    seconds = clips_to_bag(demo_clip_paths(tmp_path), bag)
    # the node's defaults: its speech gate too
    offline = evaluate_bags([bag], BUNDLE, hop_s=hop, backend="onnxruntime", speech_gate={})
    out = tmp_path / "live"
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "avemo_ros.ros.replay", str(bag), "--model-dir", str(BUNDLE),
         "--out", str(out), "--rate", "1", "--sim-time", "--hop", str(hop),
         "--backend", "onnxruntime"],
        env=ros_env(), cwd=ROOT, capture_output=True, text=True, timeout=seconds + 90)
    wall = time.monotonic() - t0
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "accuracy" in proc.stdout and "latency p50" in proc.stdout
    live, labels = read_windows_csv(out / "windows.csv")
    assert labels == offline.labels
    report = json.loads((out / "report.json").read_text())
    agree = agreement(live, offline.records)
    offline_est = [r for r in offline.records if r.label is not None]
    lat = report["latency_s"]
    print(json.dumps({"offline_windows": len(offline.records), "live_windows": len(live),
                      **{k: agree[k] for k in ("matched", "compared", "same_label", "agreement",
                                               "probability_diff_mean")},
                      "live_latency_ms_p50": lat["p50"] * 1e3,
                      "live_latency_ms_p95": lat["p95"] * 1e3,
                      "live_accuracy": report["metrics"]["accuracy"], "replay_wall_s": wall}))
    warnings = "\n".join(line for line in log.splitlines() if "WARN" in line or "ERROR" in line)
    assert agree["matched"] >= 0.9 * len(offline.records), (agree, warnings[-3000:])
    assert agree["compared"] >= 0.9 * len(offline_est)
    assert agree["agreement"] >= 0.95, agree
    assert all(r.source == bag.name and r.truth is not None for r in live)
    # latency on the sim clock: positive, below a window hop plus inference on a loaded machine
    assert lat["n"] == len(live) and 0.0 < lat["p50"] < 2.0, lat
    assert report["extra"]["sim_time"] is True


def test_player_skips_unknown_types_and_refuses_bad_parameters(ros, tmp_path):
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore, get_types_from_msg

    store = get_typestore(Stores.LATEST)
    store.register(get_types_from_msg("int32 value", "made_up_msgs/msg/Thing"))
    bag = tmp_path / "unknown"
    with Writer(bag, version=9) as w:
        thing = w.add_connection("/thing", "made_up_msgs/msg/Thing", typestore=store)
        chat = w.add_connection("/chatter", "std_msgs/msg/Int32", typestore=store)
        for i in range(5):
            t = BASE_NS + i * NS // 10
            w.write(thing, t, store.serialize_cdr(store.types["made_up_msgs/msg/Thing"](value=i),
                                                  "made_up_msgs/msg/Thing"))
            w.write(chat, t, serialize_message(Int32(data=i)))
    listener = Listener("unknown_listener")
    player = player_for(bag)
    close = spin_player(player)
    try:
        assert wait_for(lambda: True in listener.done, 10.0)
        bad = player.set_parameters([Parameter("rate", Parameter.Type.DOUBLE, 0.0)])[0]
        ok = player.set_parameters([Parameter("rate", Parameter.Type.DOUBLE, 3.0)])[0]
        ro = player.set_parameters([Parameter("publish_clock", Parameter.Type.BOOL, True)])[0]
    finally:
        close()
        listener.close()
    assert [d for _, d in listener.chatter] == list(range(5))
    assert set(player.published) == {"/chatter"}  # /thing: type not installed, skipped
    assert not bad.successful and "rate" in bad.reason
    assert ok.successful and not ro.successful


def test_player_refuses_a_missing_bag(ros, tmp_path):
    from avemo_ros.ros.bag_player import BagPlayerError

    with pytest.raises(BagPlayerError, match="does not exist"):
        BagPlayer(bag_paths=[str(tmp_path / "nope")])


def test_player_starts_paused_and_resumes(ros, tmp_path):
    bag = tmp_path / "paused"
    write_timing_bag(bag, seconds=0.5, chatter_s=(0.0, 0.2, 0.4))
    listener = Listener("paused_listener")
    player = player_for(bag, paused=True, publish_clock=True)
    close = spin_player(player)
    try:
        assert wait_for(lambda: len(listener.clock) >= 20, 10.0)  # /clock ticks while paused...
        assert {c for _, c in listener.clock} == {BASE_NS}  # ...standing at the bag's start
        assert not listener.chatter
        player.resume()
        assert wait_for(lambda: True in listener.done, 10.0)
    finally:
        close()
        listener.close()
    assert [d for _, d in listener.chatter] == [0, 1, 2]
