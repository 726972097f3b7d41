"""Model bundle checks and the ONNX Runtime backend, on a small randomly initialised bundle."""
import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from avemo_ros.audio_features import AudioFeatureConfig  # noqa: E402
from avemo_ros.backends import open_backend  # noqa: E402
from avemo_ros.estimator import EmotionEstimator  # noqa: E402
from avemo_ros.face_frames import VideoFeatureConfig  # noqa: E402
from avemo_ros.labels import RAVDESS_LABELS  # noqa: E402
from avemo_ros.manifest import BundleError, load_manifest  # noqa: E402
from avemo_ros.window import Window  # noqa: E402
from training.export import write_bundle  # noqa: E402
from training.models import AudioCnnRnn, IntermediateFusion, Video3dCnn  # noqa: E402


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    torch.manual_seed(0)
    n = len(RAVDESS_LABELS)
    out = tmp_path_factory.mktemp("bundle")
    write_bundle(out, audio_model=AudioCnnRnn(n), video_model=Video3dCnn(n),
                 fusion_model=IntermediateFusion(n), labels=list(RAVDESS_LABELS),
                 audio_cfg=AudioFeatureConfig(), video_cfg=VideoFeatureConfig(),
                 name="test", version="0", training={})
    return out


def copy(bundle, tmp_path):
    dst = tmp_path / "b"
    shutil.copytree(bundle, dst)
    return dst


def edit_manifest(path, fn):
    m = json.loads((path / "manifest.json").read_text())
    fn(m)
    (path / "manifest.json").write_text(json.dumps(m))


def test_bundle_round_trip(bundle):
    m = load_manifest(bundle)
    assert m.labels == list(RAVDESS_LABELS)
    assert m.models["audio"].inputs[0].shape == [1, 1, 200, 300]
    assert m.models["video"].inputs[0].shape == [1, 1, 20, 100, 60]
    assert m.model_id.startswith("test@0-")


def test_corrupt_model_file_is_refused_by_name(bundle, tmp_path):
    b = copy(bundle, tmp_path)
    with open(b / "video.onnx", "r+b") as f:
        f.seek(100)
        f.write(b"\0\0\0\0")
    with pytest.raises(BundleError, match="video.onnx checksum"):
        load_manifest(b)


def test_missing_model_file_and_manifest(bundle, tmp_path):
    b = copy(bundle, tmp_path)
    (b / "fusion.onnx").unlink()
    with pytest.raises(BundleError, match="fusion model file .* missing"):
        load_manifest(b)
    with pytest.raises(BundleError, match="no manifest.json"):
        load_manifest(tmp_path)


def test_preprocessing_mismatch_is_named(bundle, tmp_path):
    b = copy(bundle, tmp_path)
    edit_manifest(b, lambda m: m["preprocessing"]["audio"].update(pre_emphasis=0.97))
    with pytest.raises(BundleError, match="unknown \\[.pre_emphasis.\\]"):
        load_manifest(b)
    b2 = copy(bundle, tmp_path / "2")
    edit_manifest(b2, lambda m: m["preprocessing"]["video"].update(n_frames=30))
    with pytest.raises(BundleError, match="video network input shape"):
        load_manifest(b2)


def test_tensorrt_requested_without_engine_is_refused(bundle):
    m = load_manifest(bundle)
    with pytest.raises(BundleError, match="tensorrt backend requested"):
        open_backend(m.models["audio"], bundle, "tensorrt")
    assert open_backend(m.models["audio"], bundle, "auto").name == "onnxruntime"


def test_estimator_fuses_when_both_modalities_and_falls_back(bundle):
    est = EmotionEstimator(bundle, "onnxruntime")
    est.warmup(1)
    rng = np.random.default_rng(0)
    spec = rng.standard_normal((200, 300)).astype(np.float32)
    faces = rng.standard_normal((20, 100, 60)).astype(np.float32)
    p, mods, pa, pv, _ = est.infer(spec, faces)
    assert mods == 3 and abs(p.sum() - 1) < 1e-5 and pa is not None and pv is not None
    p, mods, pa, pv, _ = est.infer(spec, None)
    assert mods == 1 and pv is None and np.allclose(p, pa)
    p, mods, _, _, _ = est.infer(None, None)
    assert mods == 0 and p.size == 0
    # A window with audio and no frames is an audio-only estimate.
    w = Window(0, 3_000_000_000, audio=rng.standard_normal(48000).astype(np.float32) * 0.1,
               sample_rate=16000, audio_coverage=1.0)
    r = est.estimate(w)
    assert r.modalities == 1 and not r.face_found and r.label in RAVDESS_LABELS
    assert abs(float(r.probabilities.sum()) - 1) < 1e-5
    est.close()


# TensorRT engine builds, parity and refusal: test/test_engines.py
