"""The split graph over real DDS, each node in its own process (the runner's).

1. Agreement: the same camera and microphone topics feed the all-in-one perception_node
   (one runner process) and the split graph (a runner starting audio_node, video_node and
   fusion_node as three processes); both estimate every window the same.
2. Partner loss: the video node stops mid-stream and comes back, then the audio node: the
   fusion node goes on with the other modality alone (flagged), /diagnostics WARN names the
   silent partner, fusion resumes when it returns.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from avemo_ros import media  # noqa: E402
from avemo_ros.ros import transport  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = Path(os.environ.get("AVEMO_TEST_BUNDLE", ROOT / "data" / "models" / "synthetic"))
NS = 1_000_000_000

pytestmark = [
    pytest.mark.ros,
    pytest.mark.skipif(not (BUNDLE / "manifest.json").is_file(),
                       reason=f"no trained bundle at {BUNDLE}: run `make model` first"),
]


def _env() -> dict:
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_LOCALHOST_ONLY="1")
    for var in transport.USER_VARS:  # the runner's own transport choice
        env.pop(var, None)
    return env


class Runner:
    """``python -m avemo_ros.ros.runner ...`` in a subprocess; its output collected."""

    def __init__(self, *args: str):
        self.args = args
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "avemo_ros.ros.runner", "--model-dir", str(BUNDLE), *args],
            env=_env(), cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(
            target=lambda: self.lines.extend(iter(self.proc.stdout.readline, "")), daemon=True)
        self._reader.start()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, count: int = 1, timeout: float = 120.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if self.output.count(text) >= count:
                return True
            time.sleep(0.1)
        return self.output.count(text) >= count

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)  # the runner and any children it started
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._reader.join(5)
        return self.proc.returncode


def clip(seconds_each: float = 6.0, fps: int = 10):
    """Three synthetic actors in a row (happy, sad, angry), ``fps`` (a divisor of 30), 16 kHz
    mono. 10 fps by default: twice as many frames a window as the video network takes, and a
    third of the camera load of 30 fps on this machine's two cores, where five node processes
    decode every frame (a camera queue that overflows in one graph and not the other feeds the
    twins other frames)."""
    from avemo_ros.audio_features import resample
    from training.synthetic import render_clip

    frames, audio = [], []
    for i, emotion in enumerate(("happy", "sad", "angry")):
        f, a, rate = render_clip(emotion, 20, duration_s=seconds_each, seed=i, intensity=2)
        frames.append(f)
        audio.append(resample(a, rate, 16000))
    frames = np.concatenate(frames)[::30 // fps]
    return media.MediaClip(frames, np.arange(len(frames)) / float(fps),
                           np.concatenate(audio)[:, None], 16000, "three_actors")


class Graph:
    """This process's side: a file source playing the clip on /split_test/*, listeners of
    the estimates and /diagnostics; spun on a background thread."""

    def __init__(self, ns: str, emotion_topics: dict, loop: bool, rate: float = 1.0):
        from avemo_ros.msg import EmotionEstimate
        from avemo_ros.ros.file_source import FileSource

        self.ctx = Context()
        rclpy.init(args=[], context=self.ctx)
        self.t0 = time.monotonic()
        self.got: dict[str, list] = {name: [] for name in emotion_topics}
        self.diag: list = []
        self.node = rclpy.create_node("split_test_listener", context=self.ctx)
        for name, topic in emotion_topics.items():
            self.node.create_subscription(
                EmotionEstimate, topic,
                lambda m, name=name: self.got[name].append((time.monotonic() - self.t0, m)), 50)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: self.diag.append(
            (time.monotonic() - self.t0, m)), 50)
        self.source = FileSource(namespace=ns, context=self.ctx, clips=[clip()],
                                 parameter_overrides=[Parameter("loop", value=loop),
                                                      Parameter("start_delay_s", value=1.0),
                                                      Parameter("rate", value=rate)])
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._spinner = threading.Thread(target=self._spin, daemon=True)

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def start(self) -> None:
        self.executor.add_node(self.source)
        self._spinner.start()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def close(self) -> None:
        self._stop.set()
        self._spinner.join(5)
        self.executor.shutdown()
        self.source.destroy_node()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.ctx)

    def counters(self, keys: tuple[str, ...]) -> dict:
        """Per node (diagnostics status name), the last value of each counter in ``keys``."""
        out: dict = {}
        for _, m in self.diag:
            for s in m.status:
                for kv in s.values:
                    if kv.key in keys:
                        out.setdefault(s.name, {})[kv.key] = kv.value
        return out

    def fusion_status(self, since: float) -> list:
        return [(t, s) for t, m in self.diag if t >= since for s in m.status
                if s.name.endswith("fusion_node")]


def _topics(ns: str) -> list[str]:
    return ["--image", f"{ns}/image", "--audio", f"{ns}/audio", "--audio-info",
            f"{ns}/audio_info", "--param", "hop_s:=0.5", "--param", "grace_s:=2.0",
            "--param", "debug_rate_hz:=0.0", "--param", "hri_output:=false"]


def test_split_graph_gives_the_all_in_one_estimates():
    ns = f"/split_test_{uuid.uuid4().hex[:6]}"
    # at half speed the stamps fall behind the node clock: trust them (audio_clock auto
    # would map them onto the node clock where no camera stamps vouch for them, i.e. in
    # the audio node but not in the all-in-one node)
    # and let each camera subscription queue 6 s of frames (the standard QoS overrides; the
    # default keeps 5): a process starved of CPU for a moment loses no frame its twin kept
    topics = [*_topics(ns), "--param", "audio_clock:=header",
              "--param", f"qos_overrides.{ns}/image.subscription.depth:=30"]
    whole = Runner(*topics, "--emotion", f"{ns}/whole/emotion",
                   "--param", "absolute_window_grid:=true")
    split = Runner(*topics, "--graph", "split", "--emotion", f"{ns}/split/emotion",
                   "--audio-estimate", f"{ns}/audio_estimate",
                   "--video-estimate", f"{ns}/video_estimate")
    # Half speed (stamps still follow the media: the same windows): five node processes
    # share this machine's two cores, and a subscriber whose camera queue overflows sees
    # other frames than its twin; the agreement asked is for the same inputs.
    graph = Graph(ns, {"whole": f"{ns}/whole/emotion", "split": f"{ns}/split/emotion"},
                  loop=False, rate=0.5)
    try:
        assert whole.wait_for("autostart: "), whole.output[-3000:]
        assert split.wait_for("autostart: ", count=3), split.output[-5000:]
        graph.start()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not graph.source.finished:
            time.sleep(0.5)
        time.sleep(6.0)  # the last windows
    finally:
        graph.close()
        codes = (whole.stop(), split.stop())
    assert codes == (0, 0), split.output[-3000:] + whole.output[-3000:]
    assert "(best_effort, depth 30)" in whole.output, whole.output[-3000:]
    assert split.output.count("(best_effort, depth 30)") == 1, split.output[-3000:]  # video
    by_end = {name: {m.header.stamp.sec * NS + m.header.stamp.nanosec: m for _, m in msgs}
              for name, msgs in graph.got.items()}
    # The first and the last window are edges: the first may start before a subscriber
    # had matched the file source (each process discovers it on its own); the last may end
    # after the last frame, which the video node, fed no sound, never reaches
    common = sorted(set(by_end["whole"]) & set(by_end["split"]))[1:-1]
    assert len(common) >= 24 and len(common) >= 0.85 * len(by_end["whole"]), (
        len(common), len(by_end["whole"]), len(by_end["split"]))
    assert all(e % (NS // 2) == 0 for e in common)  # the absolute grid
    same = [by_end["whole"][e].label == by_end["split"][e].label for e in common]
    both = [e for e in common if by_end["whole"][e].modalities == 3
            and by_end["split"][e].modalities == 3]
    def diff(e, field):
        return float(np.max(np.abs(np.subtract(getattr(by_end["whole"][e], field),
                                               getattr(by_end["split"][e], field)))))

    # Under load a subscriber's camera queue may overflow (five node processes, two cores):
    # then the two graphs' video networks saw other frames. Where both modality networks
    # gave the same outputs, the fused estimates must be the same.
    same_inputs = [e for e in both if diff(e, "audio_probabilities") <= 1e-6
                   and diff(e, "video_probabilities") <= 1e-6]
    diffs = [diff(e, "probabilities") for e in same_inputs] or [0.0]
    flags = [by_end["whole"][e].modalities == by_end["split"][e].modalities for e in common]
    same_audio = sum(diff(e, "audio_probabilities") <= 1e-6 for e in both)
    same_video = sum(diff(e, "video_probabilities") <= 1e-6 for e in both)
    losses = graph.counters(("frames_lost", "inputs_dropped", "stale_dropped", "windows_dropped"))
    print(f"same audio outputs in {same_audio}/{len(both)}, same video outputs in "
          f"{same_video}/{len(both)}; input losses per node: {losses}")
    print(f"agreement: {sum(same)}/{len(common)} windows same label, {sum(flags)} same "
          f"modalities, {len(both)} with both modalities, {len(same_inputs)} of them with the "
          f"same modality outputs: max |p diff| {max(diffs):.2e} (windows: all-in-one "
          f"{len(by_end['whole'])}, split {len(by_end['split'])}; max |p diff| over all with "
          f"both {max([diff(e, 'probabilities') for e in both] or [0.0]):.2e})")
    assert sum(same) >= 0.99 * len(common)
    assert all(flags), [(e, by_end["whole"][e].modalities, by_end["split"][e].modalities)
                        for e, f in zip(common, flags) if not f]
    assert len(both) >= 0.5 * len(common)  # the rest: the speech gate heard no speech
    assert same_inputs and max(diffs) <= 1e-5
    assert {by_end["split"][e].model_id for e in common} == {by_end["whole"][common[0]].model_id}


def _modalities_after(msgs: list, t: float, horizon: float) -> list[int]:
    return [m.modalities for s, m in msgs if t <= s < t + horizon]


def test_fusion_goes_on_without_a_partner_and_resumes_when_it_returns():
    ns = f"/split_test_{uuid.uuid4().hex[:6]}"
    common = [*_topics(ns), "--graph", "split", "--emotion", f"{ns}/emotion",
              "--audio-estimate", f"{ns}/audio_estimate", "--video-estimate",
              f"{ns}/video_estimate"]
    fusion = Runner(*common, "--split-nodes", "fusion", "--param", "partner_timeout_s:=1.5")
    nodes = {m: Runner(*common, "--split-nodes", m) for m in ("audio", "video")}
    graph = Graph(ns, {"fused": f"{ns}/emotion"}, loop=True)
    timeline: list[tuple[float, str]] = []

    def mark(what: str) -> float:
        t = graph.now()
        timeline.append((t, what))
        return t

    def wait_estimate(what: str, ok, timeout: float = 40.0) -> float:
        """Until a new estimate satisfies ``ok``; its arrival (test clock)."""
        deadline = time.monotonic() + timeout
        seen = len(graph.got["fused"])
        while time.monotonic() < deadline:
            new = graph.got["fused"][seen:]
            hits = [t for t, m in new if ok(m)]
            if hits:
                timeline.append((hits[0], f"first estimate {what}"))
                return hits[0]
            time.sleep(0.1)
        last = [(m.modalities, m.speech_fraction) for _, m in graph.got["fused"][-10:]]
        raise AssertionError(f"no estimate {what}: {last}; {timeline}\n{fusion.output[-3000:]}")

    fused_both = ("fused (modalities 3)", lambda m: m.modalities == 3)
    alone = {  # without the audio node no gate ran: speech_fraction NaN
        "video": ("audio-only (modalities 1)", lambda m: m.modalities == 1),
        "audio": ("video-only without audio (modalities 2, no gate)",
                  lambda m: m.modalities == 2 and np.isnan(m.speech_fraction)),
    }

    try:
        for runner in (fusion, *nodes.values()):
            assert runner.wait_for("autostart: "), runner.output[-3000:]
        graph.start()
        mark("playing")
        wait_estimate(*fused_both)
        for lost in ("video", "audio"):
            t_stop = mark(f"{lost}_node stopped (SIGINT)")
            assert nodes[lost].stop() == 0, nodes[lost].output[-3000:]
            t_alone = wait_estimate(*alone[lost])
            warn = [(t, s) for t, s in graph.fusion_status(t_stop)
                    if s.level == b"\x01" and f"{lost} partner silent" in s.message]
            deadline = time.monotonic() + 5
            while not warn and time.monotonic() < deadline:
                time.sleep(0.2)
                warn = [(t, s) for t, s in graph.fusion_status(t_stop)
                        if s.level == b"\x01" and f"{lost} partner silent" in s.message]
            assert warn, [(s.level, s.message) for _, s in graph.fusion_status(t_stop)]
            mark(f"diagnostics WARN: {warn[0][1].message[:60]}")
            nodes[lost] = Runner(*common, "--split-nodes", lost)
            assert nodes[lost].wait_for("autostart: "), nodes[lost].output[-3000:]
            mark(f"{lost}_node active again")
            t_back = wait_estimate(*fused_both)
            assert t_alone - t_stop < 10.0 and t_back > t_alone
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:  # WARN ends once the partner is back
                last = graph.fusion_status(t_back)
                if last and last[-1][1].level == b"\x00":
                    break
                time.sleep(0.2)
            assert last and last[-1][1].level == b"\x00", last[-1][1].message if last else None
            mark("diagnostics OK")
    finally:
        graph.close()
        for runner in (*nodes.values(), fusion):
            runner.stop()
    print("partner-loss timeline (s):\n" + "\n".join(f"  {t:6.2f} {w}" for t, w in timeline))
    fused = graph.got["fused"]
    assert all(m.modalities in (1, 2, 3) for _, m in fused)
    assert all(m.probabilities and abs(sum(m.probabilities) - 1) < 1e-4 for _, m in fused)


# --- the message and the fusion node's refusals, in this process -----------------------
def test_modality_message_round_trip_and_malformed_ones():
    from avemo_ros.modality_estimates import ModalityPart, ModalityWindow
    from avemo_ros.msg import ModalityEstimate
    from avemo_ros.ros.modality_msg import (ModalityMessageError, modality_message,
                                            modality_window_of)

    parts = [ModalityPart(np.array([0.25, 0.75], np.float32), np.arange(4, dtype=np.float32),
                          face, (1, 2, 30, 40)) for face in ("abcde", "fghij")]
    mw = ModalityWindow("video", 7 * NS, 10 * NS, "m@1", "estimated", parts, inference_time=0.01,
                        frame_id="camera", hop_s=0.5)
    msg = modality_message(mw, ModalityEstimate, ["a", "b"], "logits")
    assert (msg.modality, msg.count, msg.fusion_input_size) == (ModalityEstimate.VIDEO, 2, 4)
    back = modality_window_of(msg, (1, 4))
    assert (back.modality, back.start_ns, back.end_ns, back.model_id, back.frame_id,
            back.hop_s) == ("video", 7 * NS, 10 * NS, "m@1", "camera", 0.5)
    assert [(p.face_id, p.box, p.fusion_input.shape) for p in back.parts] == [
        ("abcde", (1, 2, 30, 40), (1, 4)), ("fghij", (1, 2, 30, 40), (1, 4))]
    assert back.speech_detected is None  # no gate on video
    audio = modality_message(ModalityWindow("audio", 0, 3 * NS, "m@1", "skipped", [], False,
                                            0.05), ModalityEstimate, ["a", "b"], "logits")
    assert modality_window_of(audio).speech_detected is False and audio.count == 0
    msg.count = 3
    with pytest.raises(ModalityMessageError, match="probabilities"):
        modality_window_of(msg)
    msg.count, msg.modality = 2, 7
    with pytest.raises(ModalityMessageError, match="neither AUDIO"):
        modality_window_of(msg)


def test_fusion_node_refuses_another_model_and_malformed_halves():
    from rclpy.lifecycle import TransitionCallbackReturn

    from avemo_ros.msg import ModalityEstimate
    from avemo_ros.ros.fusion_node import FusionNode

    ctx = Context()
    rclpy.init(args=[], context=ctx)
    ns = f"/fusion_test_{uuid.uuid4().hex[:6]}"
    node = FusionNode(namespace=ns, context=ctx, parameter_overrides=[
        Parameter("model_dir", value=str(BUNDLE)), Parameter("warmup_runs", value=0),
        Parameter("hri_output", value=False)])
    probe = rclpy.create_node("probe", namespace=ns, context=ctx)
    pub = probe.create_publisher(ModalityEstimate, "audio_estimate", 10)
    video_pub = probe.create_publisher(ModalityEstimate, "video_estimate", 10)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    executor.add_node(probe)
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert set(node.estimator.nets) == {"fusion"}  # its own network only
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        deadline = time.monotonic() + 10
        while (pub.get_subscription_count() == 0 or video_pub.get_subscription_count() == 0) \
                and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        other = ModalityEstimate(modality=ModalityEstimate.AUDIO, model_id="other@9",
                                 labels=list(node.estimator.labels), status="skipped")
        broken = ModalityEstimate(modality=ModalityEstimate.AUDIO, count=1,
                                  model_id=node.estimator.model_id, probabilities=[1.0])
        pub.publish(other)
        pub.publish(broken)
        deadline = time.monotonic() + 10
        counts = {}
        while time.monotonic() < deadline and not (
                counts.get("partner_model_mismatch") and counts.get("message_invalid")):
            executor.spin_once(timeout_sec=0.05)
            counts = node.health.snapshot()
        assert counts.get("partner_model_mismatch") == 1, counts
        assert counts.get("message_invalid") == 1, counts
        assert "other@9" in node.health.last_text["partner_model_mismatch"]
        assert node.pairer.waiting == 0 and not node.pairer.heard
        # partners on different grids: reported, naming both hops
        for p, modality, hop in ((pub, ModalityEstimate.AUDIO, 0.5),
                                 (video_pub, ModalityEstimate.VIDEO, 1.0)):
            p.publish(ModalityEstimate(modality=modality, model_id=node.estimator.model_id,
                                       labels=list(node.estimator.labels), status="skipped",
                                       hop_s=hop))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not counts.get("partner_grid_mismatch"):
            executor.spin_once(timeout_sec=0.05)
            counts = node.health.snapshot()
        assert counts.get("partner_grid_mismatch") == 1, counts
        assert "audio 0.5, video 1" in node.health.last_text["partner_grid_mismatch"]
    finally:
        executor.shutdown()
        probe.destroy_node()
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)


def test_modality_nodes_load_their_own_network_only():
    from rclpy.lifecycle import TransitionCallbackReturn

    from avemo_ros.ros.modality_node import AudioNode, VideoNode

    ctx = Context()
    rclpy.init(args=[], context=ctx)
    try:
        for cls, role in ((AudioNode, "audio"), (VideoNode, "video")):
            node = cls(namespace=f"/nets_{uuid.uuid4().hex[:6]}", context=ctx,
                       parameter_overrides=[Parameter("model_dir", value=str(BUNDLE)),
                                            Parameter("warmup_runs", value=1)])
            try:
                assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
                assert set(node.estimator.nets) == {role}
                assert (node._audio is None) == (role == "video")
            finally:
                node.trigger_cleanup()
                node.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)
