"""StreamingPipeline without ROS: every window accounted for, every kind of problem heard."""
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from avemo_ros import conversions as conv
from avemo_ros.estimator import AudioBranch, EmotionEstimator, VideoBranch
from avemo_ros.face_frames import FaceStack
from avemo_ros.health import Health
from avemo_ros.input_problems import Problem, ProblemLog
from avemo_ros.pipeline import (DROPPED, ESTIMATED, SKIPPED, PipelineConfig,
                                StreamingPipeline)
from avemo_ros.speech_gate import SpeechGate, default_model_path
from avemo_ros.stream_events import CameraFrame, MicrophoneChunk, camera_frame

NS = 1_000_000_000
RATE, CHUNK = 16000, 512
FACE = np.full((8, 8), 100, np.uint8)  # the fake detector finds a face in bright frames
NO_FACE = np.zeros((8, 8), np.uint8)


class FakeEstimator(EmotionEstimator):
    """The estimator's contract without networks: audio says neutral, video says happy."""

    def __init__(self):  # noqa: D107 - no bundle
        self.manifest = SimpleNamespace(audio=SimpleNamespace(window_s=3.0),
                                        video=SimpleNamespace(n_frames=20))
        self.labels, self.model_id = ["neutral", "happy"], "fake"
        self.extractor = SimpleNamespace(detector=SimpleNamespace(
            detect=lambda g: (1, 1, 4, 4) if g.mean() > 10 else None))
        self.video_calls = 0

    def video_branch(self, greys, boxes, bad_frames=0):
        self.video_calls += 1
        if not greys or sum(b is not None for b in boxes) < len(greys) / 2:
            return VideoBranch(FaceStack(None, False, 0.0, None), None, None, {}, bad_frames)
        return VideoBranch(FaceStack(np.zeros(1), True, 1.0, (1, 1, 4, 4)),
                           np.array([0.2, 0.8], np.float32), {}, {"video_net": 0.0}, bad_frames)

    def audio_branch(self, audio, sample_rate):
        return AudioBranch(audio, np.array([0.7, 0.3], np.float32), {}, {"audio_net": 0.0})

    def fuse(self, audio, video):
        mods = (audio.probabilities is not None) | 2 * (video.probabilities is not None)
        ps = [p for p in (audio.probabilities, video.probabilities) if p is not None]
        return (np.mean(ps, axis=0) if ps else np.zeros(0, np.float32)), int(mods), {}


def stream(t0, t1, *, audio=True, video=True, fps=30.0, image=FACE, audio_shift_s=0.0,
           received_shift_s=0.0, live=False):
    """Camera frames and audio chunks over [t0, t1) in stamp order; received = stamp
    (+ received_shift_s); live: with monotonic arrival times too."""
    events = []
    if audio:
        for i in range(int((t1 - t0) * RATE) // CHUNK):
            s = t0 + i * CHUNK / RATE
            stamp = int(round((s + audio_shift_s) * NS))
            events.append(MicrophoneChunk(stamp, np.full(CHUNK, 0.1, np.float32), RATE,
                                          int(round((s + received_shift_s) * NS)),
                                          s + received_shift_s if live else None))
    if video:
        for i in range(int((t1 - t0) * fps)):
            s = t0 + i / fps
            events.append(CameraFrame(int(round(s * NS)), image,
                                      received_ns=int(round((s + received_shift_s) * NS)),
                                      received_s=s + received_shift_s if live else None))
    return sorted(events, key=lambda e: (e.received_ns, isinstance(e, CameraFrame)))


def make(max_waiting=None, **cfg):
    health = Health()
    lines = []
    log = ProblemLog(health, lambda level, text: lines.append(text), throttle_s=5.0)
    est = FakeEstimator()
    cfg.setdefault("face_tracking", False)  # the fake detector on every frame
    pipe = StreamingPipeline(est, log, PipelineConfig(hop_s=1.0, grace_s=0.5,
                                                      max_waiting_windows=max_waiting, **cfg))
    return pipe, health, lines, est


def feed(pipe, events, step=True):
    """Push events; with ``step`` run the queued work after each (like the live worker)."""
    out = []
    for e in events:
        pipe.push(e)
        if step:
            out += pipe.run()
    return out


def ends(outcomes, status=None):
    return [round(o.end_ns / NS, 3) for o in outcomes if status is None or o.status == status]


def test_every_window_of_a_steady_stream_is_estimated_with_both_modalities():
    pipe, health, _, _ = make(max_waiting=5)
    out = feed(pipe, stream(0.0, 8.0, live=True)) + pipe.flush()
    assert ends(out) == [3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    assert all(o.status == ESTIMATED and o.result.modalities == 3 for o in out)
    assert not {k for k in health.snapshot() if Problem.by_key(k)}


def test_a_forward_jump_estimates_every_window_with_data_and_skips_the_empty_ones():
    """Stamps jump 15 s ahead while arrival goes on: the windows made ready at once are all
    accounted for; none is dropped (the worker is not behind)."""
    pipe, health, _, _ = make(max_waiting=5)
    events = stream(0.0, 5.0, live=True)
    later = stream(20.0, 26.0, live=True, received_shift_s=-15.0)
    out = feed(pipe, events + later) + pipe.flush()
    assert ends(out) == [float(e) for e in range(3, 26)]  # each window exactly once
    assert ends(out, DROPPED) == [] and health.snapshot().get("windows_dropped", 0) == 0
    assert {3.0, 4.0, 5.0, 6.0, 23.0, 24.0, 25.0} <= set(ends(out, ESTIMATED))
    assert set(ends(out, SKIPPED)) >= set(map(float, range(9, 21)))  # no data in them
    assert health.snapshot()["stream_gaps"] >= 1


def test_audio_joining_a_camera_only_stream_loses_no_window():
    pipe, health, _, _ = make(max_waiting=5)
    events = sorted(stream(0.0, 8.0, audio=False, live=True) + stream(4.0, 8.0, video=False,
                                                                      live=True),
                    key=lambda e: e.received_ns)
    out = feed(pipe, events) + pipe.flush()
    assert ends(out) == [3.0, 4.0, 5.0, 6.0, 7.0, 8.0] and not ends(out, DROPPED)
    mods = {round(o.end_ns / NS): o.result.modalities for o in out if o.result}
    assert mods[3] == 2 and mods[7] == 3 and mods[8] == 3


def test_a_backward_jump_restarts_on_the_new_clock_without_old_frames():
    pipe, health, _, _ = make()
    old = stream(10.0, 15.0, received_shift_s=0.0)
    new = stream(0.0, 5.5, image=NO_FACE, received_shift_s=15.0)
    out = feed(pipe, old + new) + pipe.flush()
    assert health.snapshot()["timestamps_backwards"] == 1
    restarted = [o for o in out if o.end_ns < 10 * NS]
    assert ends(restarted) == [3.0, 4.0, 5.0]
    # the new clock's frames show no face: nothing of the old clock's frames is reused
    assert all(o.result.modalities == 1 and not o.result.face_found for o in restarted)


def test_compute_falling_behind_drops_the_oldest_windows_counted():
    pipe, health, lines, _ = make(max_waiting=2)
    feed(pipe, stream(0.0, 8.0), step=False)  # nothing computed meanwhile
    out = pipe.flush()
    assert sorted(ends(out)) == [3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    assert ends(out, DROPPED) == [3.0, 4.0, 5.0, 6.0] and ends(out, ESTIMATED) == [7.0, 8.0]
    assert health.snapshot()["windows_dropped"] == 4
    assert any("falls behind" in line and "dropped for a newer one" in line for line in lines)


def test_the_video_branch_is_computed_before_the_window_ends():
    pipe, _, _, est = make()
    events = stream(0.0, 4.0)
    before = [e for e in events if e.stamp_ns < int(2.95 * NS)]
    rest = [e for e in events if e.stamp_ns >= int(2.95 * NS)]
    assert feed(pipe, before) == []
    assert est.video_calls == 1  # the window ending at 3 s: its frames are final
    out = feed(pipe, rest)
    assert ends(out) == [3.0] and out[0].result.modalities == 3
    assert out[0].result.critical_time >= 0


def test_clock_offset_between_camera_and_microphone_is_reported_once():
    pipe, health, lines, _ = make(clock_offset_tolerance_s=0.5)
    events = sorted(stream(0.0, 8.0, video=False, audio_shift_s=2.0) +
                    stream(0.0, 8.0, audio=False), key=lambda e: e.received_ns)
    feed(pipe, events)
    assert health.snapshot()["clock_offset"] == 1
    assert any("clock_offset" in line and "-2.0" in line for line in lines)
    pipe, health, _, _ = make(clock_offset_tolerance_s=0.5)
    feed(pipe, stream(0.0, 8.0))
    assert "clock_offset" not in health.snapshot()


def test_late_and_duplicate_audio_are_counted_and_logged():
    pipe, health, lines, _ = make()
    events = stream(0.0, 5.0)
    chunks = [e for e in events if isinstance(e, MicrophoneChunk)]
    dup = chunks[40]
    late = MicrophoneChunk(chunks[40].stamp_ns + CHUNK * NS // RATE // 2, dup.samples, RATE,
                           chunks[50].received_ns)
    events += [dup, late]
    events.sort(key=lambda e: e.received_ns)
    feed(pipe, events)
    counts = health.snapshot()
    assert counts["audio_duplicate"] == 1 and counts["audio_late"] == 1
    assert any(line.startswith("audio_duplicate") for line in lines)
    assert any(line.startswith("audio_late") for line in lines)


def test_one_distinct_frame_is_no_video_modality():
    pipe, health, _, _ = make(min_video_frames=10)
    frames = [CameraFrame(0, FACE, received_ns=0), CameraFrame(int(4.9 * NS), FACE,
                                                             received_ns=int(4.9 * NS))]
    events = sorted(stream(0.0, 5.0, video=False) + frames, key=lambda e: e.received_ns)
    out = feed(pipe, events)
    first = next(o for o in out if o.end_ns == 3 * NS)
    assert first.result.modalities == 1  # audio only: 1 frame repeated in 20 slots is no video
    assert health.snapshot()["video_too_few_frames"] >= 1


def test_undecodable_frames_are_counted_once_each_not_per_window():
    pipe, health, _, _ = make()

    def broken(_):
        raise conv.InvalidImage("cannot decode")

    events = stream(0.0, 6.0)
    events = [CameraFrame(e.stamp_ns, e.payload, broken, e.received_ns)
              if isinstance(e, CameraFrame) and 1 * NS <= e.stamp_ns < 2 * NS else e
              for e in events]
    out = feed(pipe, events) + pipe.flush()
    assert all(o.status == ESTIMATED for o in out)
    bad = health.snapshot()["image_invalid"]
    assert 1 <= bad <= 30  # each kept broken frame once, though three windows select them
    assert max(o.result.bad_frames for o in out) >= 1


def _png_claiming(width, height):
    ok, buf = cv2.imencode(".png", np.zeros((4, 4), np.uint8))
    data = bytearray(buf.tobytes())
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    return bytes(data)


def _jpeg_claiming(width, height):
    ok, buf = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))
    data = bytearray(buf.tobytes())
    i = 2
    while data[i + 1] not in (0xC0, 0xC1, 0xC2):
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    data[i + 5:i + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


@pytest.mark.parametrize("make_bytes", [_png_claiming, _jpeg_claiming], ids=["png", "jpeg"])
def test_compressed_bombs_are_refused_from_the_header_without_decoding(monkeypatch, make_bytes):
    def no_decode(*a, **k):
        raise AssertionError("decoded a compressed image over max_pixels")

    monkeypatch.setattr(conv.cv2, "imdecode", no_decode)
    msg = SimpleNamespace(format="png", data=np.frombuffer(make_bytes(8000, 8000), np.uint8),
                          header=SimpleNamespace(stamp=SimpleNamespace(sec=1, nanosec=0)))
    with pytest.raises(conv.ImageTooLarge, match="8000x8000"):
        camera_frame(msg, max_pixels=4096 * 4096)
    with pytest.raises(conv.ImageTooLarge):
        conv.compressed_to_rgb(msg, max_pixels=4096 * 4096)
    assert conv.ImageTooLarge.problem is Problem.IMAGE_TOO_LARGE
    small = SimpleNamespace(format="png", data=np.frombuffer(make_bytes(64, 48), np.uint8),
                            header=msg.header)
    assert camera_frame(small, max_pixels=4096 * 4096).stamp_ns == NS  # checked, not decoded


def test_each_kind_of_problem_has_its_own_throttle():
    clock = [0.0]
    lines = []
    health = Health()
    log = ProblemLog(health, lambda level, text: lines.append((level, text)), throttle_s=2.0,
                     clock=lambda: clock[0])
    for i in range(40):  # four kinds interleaved for 10 s
        clock[0] = i * 0.25
        kind = (Problem.IMAGE_UNSUPPORTED, Problem.AUDIO_LATE, Problem.STREAM_GAPS,
                Problem.AUDIO_NON_FINITE)[i % 4]
        log.report(kind, f"message {i}")
    logged = {text.split(":")[0] for _, text in lines}
    assert logged == {"image_unsupported", "audio_late", "stream_gaps", "audio_non_finite"}
    assert len(lines) == 4 * 5  # each kind once per 2 s over 10 s
    assert health.snapshot()["audio_late"] == 10
    assert any("more audio_late since the last line" in text for _, text in lines)
    levels = {text.split(":")[0]: level for level, text in lines}
    assert levels["image_unsupported"] == 2 and levels["audio_late"] == 1


def test_warn_messages_name_their_cause():
    health = Health()
    log = ProblemLog(health, lambda *a: None)
    log.count("windows_published")
    assert health.describe({}) == (0, "")
    log.report(Problem.FRAMES_LOST, "3 camera frame(s) lost in transport: use the profile", 3)
    level, message = health.describe({})
    assert level == 1 and message.startswith("frames_lost +3") and "profile" in message


def test_the_same_events_give_the_same_outcomes_twice():
    def run():
        pipe, health, _, _ = make()
        events = stream(0.0, 6.0) + stream(8.0, 12.0)
        out = feed(pipe, sorted(events, key=lambda e: e.received_ns)) + pipe.flush()
        return ([(o.end_ns, o.status, None if o.result is None else o.result.label)
                 for o in out], health.snapshot())

    assert run() == run()


def test_the_worker_thread_computes_what_callbacks_only_submit():
    import threading

    from avemo_ros.pipeline_thread import PipelineThread

    pipe, health, _, _ = make(max_waiting=5)
    got, done = [], threading.Event()

    def on_outcome(o):
        got.append((o.status, threading.current_thread().name))
        if len(got) == 3:
            done.set()

    worker = PipelineThread(pipe, on_outcome, max_frames=1000)
    worker.start()
    try:
        for e in stream(0.0, 5.2, live=True):
            worker.submit(e)
        assert done.wait(10.0), got
    finally:
        assert worker.stop()
    assert got == [(ESTIMATED, "perception_worker")] * 3
    assert worker.gauges["frames_unused"] > 0 and "face_detection_s" in worker.gauges


def test_a_full_inbox_drops_the_oldest_input_counted():
    from avemo_ros.pipeline_thread import PipelineThread

    pipe, health, lines, _ = make()
    worker = PipelineThread(pipe, lambda o: None, max_frames=10, max_chunks=1000)
    for e in stream(0.0, 1.0):  # no worker running: nothing is taken out
        worker.submit(e)
    assert health.snapshot()["inputs_dropped"] == 30 - 10
    assert "audio" not in " ".join(lines) and any("camera frame dropped" in x for x in lines)


def test_min_video_frames_defaults_to_half_the_models_frames_and_never_exceeds_them():
    est = FakeEstimator()
    log = ProblemLog(Health(), lambda *a: None)
    assert StreamingPipeline(est, log, PipelineConfig(face_tracking=False)).min_video_frames == 10
    est.manifest.video.n_frames = 8
    assert StreamingPipeline(est, log, PipelineConfig(face_tracking=False)).min_video_frames == 4
    cfg = PipelineConfig(min_video_frames=12, face_tracking=False)
    assert StreamingPipeline(est, log, cfg).min_video_frames == 8


# --- the speech gate (the real Silero VAD) -----------------------------------------------
needs_vad = pytest.mark.skipif(not default_model_path().is_file(), reason="Silero VAD "
                               "weights absent: python -m avemo_ros.tools.fetch_weights "
                               "silero-vad")


def _voice(seconds: float) -> np.ndarray:
    """The synthetic voice of the demo clips (one utterance from 0.35 s), at RATE."""
    from avemo_ros.audio_features import resample
    from training.synthetic import render_clip

    _, audio, rate = render_clip("happy", 20, size=(64, 64), fps=2.0, duration_s=seconds,
                                 intensity=2)
    return resample(audio, rate, RATE)


def _with_audio(audio: np.ndarray, image) -> list:
    """Chunks of ``audio`` and 30 fps frames of ``image`` over the same span, live."""
    events = [e for e in stream(0.0, audio.size / RATE, image=image, live=True)
              if isinstance(e, CameraFrame)]
    for i in range(audio.size // CHUNK):
        s = i * CHUNK / RATE
        events.append(MicrophoneChunk(int(round(s * NS)), audio[i * CHUNK:(i + 1) * CHUNK],
                                      RATE, int(round(s * NS)), s))
    return sorted(events, key=lambda e: (e.received_ns, isinstance(e, CameraFrame)))


def _gated(image):
    pipe, health, lines, est = make(max_waiting=5)
    pipe.speech_gate = SpeechGate()
    calls = []
    branch = est.audio_branch
    est.audio_branch = lambda audio, rate: calls.append(audio.size) or branch(audio, rate)
    return pipe, health, lines, calls


@needs_vad
def test_the_gate_passes_speech_to_the_audio_network():
    pipe, health, _, calls = _gated(FACE)
    out = feed(pipe, _with_audio(_voice(3.6), FACE)) + pipe.flush()
    assert ends(out, ESTIMATED) == [3.0] and len(calls) == 1
    r = out[0].result
    assert r.modalities == 3 and r.speech_detected and 0.25 < r.speech_fraction <= 1.0
    assert r.timings["speech_gate"] > 0
    assert "windows_without_speech" not in health.snapshot()


@needs_vad
@pytest.mark.parametrize("noise", ["silence", "fan"])
def test_no_speech_leaves_a_video_only_estimate_and_is_counted(noise):
    from bench.speech_gate import fan_noise, silence

    rng = np.random.default_rng(5)
    audio = (silence if noise == "silence" else fan_noise)(rng, 4.0, RATE).astype(np.float32)
    pipe, health, lines, calls = _gated(FACE)
    out = feed(pipe, _with_audio(audio, FACE)) + pipe.flush()
    assert ends(out, ESTIMATED) == [3.0, 4.0] and calls == []  # the audio net never ran
    for o in out:
        r = o.result
        assert r.modalities == 2 and r.speech_detected is False and r.speech_fraction < 0.2
        assert r.audio_probabilities is None
    assert health.snapshot()["windows_without_speech"] == 2
    assert not any("neither usable audio" in line for line in lines)


@needs_vad
def test_nobody_speaking_and_nobody_in_view_is_idle_not_a_problem():
    from bench.speech_gate import silence

    audio = silence(np.random.default_rng(6), 4.0, RATE).astype(np.float32)
    pipe, health, lines, calls = _gated(NO_FACE)
    out = feed(pipe, _with_audio(audio, NO_FACE)) + pipe.flush()
    assert ends(out, SKIPPED) == [3.0, 4.0] and calls == []
    snap = health.snapshot()
    assert snap["windows_idle"] == 2 and snap["windows_without_speech"] == 2
    assert "windows_skipped" not in snap and lines == []
