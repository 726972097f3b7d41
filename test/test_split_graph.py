"""The split graph's core without ROS: one-stream pipelines, their halves, pairing, fusion.

The agreement test runs the real bundle three ways over the same clips: the all-in-one
pipeline, and an audio-only and a video-only pipeline whose halves are paired and fused as
the fusion node does; every window must come out the same.
"""
from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from avemo_ros.health import Health
from avemo_ros.input_problems import ProblemLog
from avemo_ros.modality_estimates import (ModalityPart, ModalityWindow, fuse_windows,
                                          modality_window)
from avemo_ros.pipeline import ESTIMATED, PipelineConfig, StreamingPipeline
from avemo_ros.stream_events import CameraFrame, from_clip_events
from avemo_ros.window import NS, WindowBuffer
from avemo_ros.window_pairing import WindowPairer
from real_faces import needs_astronaut

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = Path(os.environ.get("AVEMO_TEST_BUNDLE", ROOT / "data" / "models" / "synthetic"))
needs_bundle = pytest.mark.skipif(not (BUNDLE / "manifest.json").is_file(),
                                  reason=f"no trained bundle at {BUNDLE}: run `make model`")


# --- the absolute window grid ---------------------------------------------------------
def test_absolute_grid_puts_window_ends_on_multiples_of_the_hop():
    ends = {}
    for name, first_s in (("audio", 10.37), ("video", 10.81)):
        buf = WindowBuffer(window_s=3.0, hop_s=0.5, n_frames=4, absolute_grid=True,
                           wait_for=(name,))
        out = []
        for i in range(200):
            t = first_s + i * 0.04
            if name == "audio":
                buf.add_audio(int(t * NS), np.zeros(640, np.float32), 16000)
            else:
                buf.add_frame(int(t * NS), i)
            out += buf.pop_ready()
        ends[name] = [w.end_ns for w in out]
        assert all(e % (NS // 2) == 0 for e in ends[name])
        assert ends[name][0] - 3 * NS >= int(first_s * NS)  # no window before the stream
    assert ends["audio"][0] == int(13.5 * NS) and ends["video"][0] == int(14.0 * NS)
    assert set(ends["video"]) <= set(ends["audio"]) | {ends["video"][-1]}


def test_first_stamp_grid_is_still_the_default():
    buf = WindowBuffer(window_s=3.0, hop_s=1.0, n_frames=4, wait_for=("audio",))
    for i in range(100):
        buf.add_audio(int((5.37 + i * 0.04) * NS), np.zeros(640, np.float32), 16000)
    assert buf.pop_ready()[0].end_ns == int(5.37 * NS) + 3 * NS


# --- pairing ----------------------------------------------------------------------------
def half(modality, end_s, model="m@1", present=True):
    parts = [ModalityPart(np.array([0.5, 0.5], np.float32))] if present else []
    return ModalityWindow(modality, int((end_s - 3) * NS), int(end_s * NS), model, "estimated",
                          parts)


def test_pairs_by_end_and_waits_for_a_live_partner():
    p = WindowPairer("m@1", grace_s=0.5, partner_timeout_s=3.0, started_s=0.0)
    assert p.add(half("audio", 10), 1.0) is None
    assert p.pop_ready(1.2) == []  # video not heard yet: counted from the first half
    assert p.add(half("video", 10), 1.3) is None
    assert [sorted(h) for h in p.pop_ready(1.3)] == [["audio", "video"]]
    p.add(half("audio", 11), 1.5)
    assert p.pop_ready(1.7) == []  # video heard 0.4 s ago: alive, waited for
    assert [sorted(h) for h in p.pop_ready(1.8)] == [["audio"]]  # quiet for grace_s
    assert p.add(half("video", 11), 1.9) == "late"  # its window went out without it


def test_a_lagging_partner_is_waited_for_up_to_one_window():
    p = WindowPairer("m@1", grace_s=1.0, partner_timeout_s=3.0)
    p.add(half("video", 9.5), 0.0)
    p.add(half("audio", 9.5), 0.0)
    p.pop_ready(0.0)
    t = 0.0
    for end in (10, 10.5, 11, 11.5, 12):  # audio on time, video alive, 2.5 s behind
        t += 0.5
        p.add(half("audio", end), t)
        p.add(half("video", end - 2.5), t)  # (late for windows out already: alive all the same)
        assert p.pop_ready(t) == [], end  # less than a window (3 s) behind: waited for
    p.add(half("audio", 13), t + 0.5)  # 3 s ahead of the window ending 10: no longer
    assert [h["audio"].end_ns / NS for h in p.pop_ready(t + 0.5)] == [10.0]
    p.add(half("video", 10.5), t + 0.6)
    assert [sorted(h) for h in p.pop_ready(t + 0.6)] == [["audio", "video"]]


def test_a_silent_partner_is_named_and_its_return_ends_that():
    p = WindowPairer("m@1", grace_s=1.0, partner_timeout_s=3.0, started_s=0.0)
    p.add(half("audio", 10), 0.5)
    p.add(half("video", 10), 0.5)
    assert len(p.pop_ready(0.5)) == 1
    p.add(half("audio", 11), 4.0)
    assert p.silent(4.0) == {"video": pytest.approx(3.5)}
    assert [sorted(h) for h in p.pop_ready(4.0)] == [["audio"]]  # video quiet > grace_s
    p.add(half("video", 12), 5.0)
    assert p.silent(5.0) == {}
    p.add(half("audio", 12), 5.1)
    assert [sorted(h) for h in p.pop_ready(5.1)] == [["audio", "video"]]


def test_a_later_window_from_the_partner_releases_an_earlier_one():
    p = WindowPairer("m@1", grace_s=5.0, partner_timeout_s=30.0)
    p.add(half("audio", 10), 1.0)
    p.add(half("video", 11), 1.1)  # the video node had nothing for the window ending 10
    assert [sorted(h) for h in p.pop_ready(1.1)] == [["audio"]]


def test_another_model_is_refused():
    p = WindowPairer("m@1", grace_s=0.5, partner_timeout_s=3.0)
    assert p.add(half("video", 10, model="other@2"), 1.0) == "model_mismatch"
    assert p.waiting == 0 and "video" not in p.heard


# --- agreement with the all-in-one pipeline, real bundle ---------------------------------
def _events(seconds=9.0, faces=1):
    """Three synthetic actors in a row; ``faces`` 3: two real faces (scikit-image's
    astronaut) beside each actor, 640x480 (so that they are over the 64 px minimum)."""
    from avemo_ros.audio_features import resample
    from avemo_ros.clip_stream import clips_events
    from bench.publisher import with_extra_faces
    from training.synthetic import render_clip

    clips = []
    for i, emotion in enumerate(("happy", "sad", "angry")):
        frames, audio, rate = render_clip(emotion, 20, duration_s=seconds, seed=i, intensity=2,
                                          size=(640, 480) if faces > 1 else (320, 240))
        if faces > 1:
            frames = np.stack([with_extra_faces(f, faces - 1) for f in frames])
        clips.append(SimpleNamespace(frames=frames, frame_times=np.arange(len(frames)) / 30.0,
                                     audio=resample(audio, rate, 16000), sample_rate=16000))
    # a silent stretch (the speech gate's audio-absent windows) between clips 2 and 3
    clips[2].audio = np.concatenate([np.zeros(16000 * 3, np.float32), clips[2].audio[:-48000]])
    return from_clip_events(clips_events(clips, 1_700_000_000_123_000_000, chunk_samples=512))


def _run(estimator, events, inputs, gate):
    pipe = StreamingPipeline(estimator, ProblemLog(Health(), lambda *_: None), PipelineConfig(
        hop_s=0.5, grace_s=1.0, inputs=inputs, absolute_grid=True), gate)
    out = []
    for e in events:
        if ("video" if isinstance(e, CameraFrame) else "audio") in inputs:
            pipe.push(e)
            out += pipe.run()
    return out + pipe.flush()


@needs_bundle
@pytest.mark.parametrize("faces", [1, pytest.param(3, marks=needs_astronaut)])
def test_split_halves_fuse_to_the_all_in_one_estimates(faces):
    from avemo_ros.estimator import EmotionEstimator
    from avemo_ros.speech_gate import SpeechGate, bundle_gate_config, default_model_path

    est = EmotionEstimator(BUNDLE, backend="onnxruntime", threads=1)
    gate = (SpeechGate(bundle_gate_config(est.manifest.training))
            if default_model_path().is_file() else None)
    events = _events(9.0 if faces == 1 else 6.0, faces)
    whole = {o.end_ns: o.result for o in _run(est, events, ("audio", "video"), gate)
             if o.status == ESTIMATED}
    halves = {}
    for modality in ("audio", "video"):
        for o in _run(est, events, (modality,), gate):
            halves.setdefault(o.end_ns, {})[modality] = modality_window(o, modality, est.model_id)
    assert len(whole) >= (40 if faces == 1 else 25)
    both = fused = 0
    for end, r in whole.items():
        h = halves[end]
        split = fuse_windows(est, h.get("audio"), h.get("video"))
        assert split is not None, end
        # (face ids are each tracker's own random names: the split graph's are the video node's)
        assert (split.label, split.modalities, split.face_box) == (r.label, r.modalities,
                                                                   r.face_box)
        np.testing.assert_allclose(split.probabilities, r.probabilities, atol=1e-6)
        assert split.speech_detected == r.speech_detected
        assert [f.box for f in split.faces] == [f.box for f in r.faces]
        both += r.modalities == 3
        fused += 1
    assert both >= 15  # most windows had both modalities
    if faces > 1:  # several faces: one fused estimate each, the same ones
        assert max(len(r.faces) for r in whole.values()) == faces
    if gate is not None:  # the silent stretch: windows the gate kept from the audio network
        assert any(r.modalities == 2 and r.speech_detected is False for r in whole.values())
    assert fused == len(whole)
