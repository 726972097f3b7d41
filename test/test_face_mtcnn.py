"""MTCNN (avemo_ros.face_mtcnn): the ONNX files made from the facenet-pytorch wheel's state
dicts (training.mtcnn_export) against our PyTorch networks, the astronaut found on 640x480
and 1280x720 frames at several sizes, the minimum and maximum face rules, non-maximum
suppression, and the errors without the ONNX files.

The weights come from ``python -m avemo_ros.tools.fetch_weights mtcnn`` and ``python -m
training.mtcnn_export`` (both run by scripts/setup.sh); the tests that need them skip
without."""
import importlib.util
import json
import shutil

import cv2
import numpy as np
import pytest

from avemo_ros.face_detectors import DETECTORS, DetectorError, iou, make_detector
from avemo_ros.face_mtcnn import (ONNX_FILES, RECORD, MtcnnDetector, default_model_dir,
                                  export_problems, nms)
from avemo_ros.tools.fetch_weights import SOURCES, check, sha256_of
from bench.face_scenes import FACE_BOX, make_scene, matches, skimage_unavailable

MODEL_DIR = default_model_dir()
MISSING = export_problems(MODEL_DIR)
needs_mtcnn = pytest.mark.skipif(bool(MISSING), reason=f"MTCNN ONNX files not in place "
                                 f"({'; '.join(MISSING)}): run scripts/setup.sh, or python -m "
                                 "avemo_ros.tools.fetch_weights mtcnn && python -m "
                                 "training.mtcnn_export")
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="torch (training environment) not installed")
needs_skimage = pytest.mark.skipif(bool(skimage_unavailable()),
                                   reason=str(skimage_unavailable()))
WEIGHTS_MISSING = check("mtcnn")
needs_weights = pytest.mark.skipif(bool(WEIGHTS_MISSING), reason=f"mtcnn weights not fetched "
                                   f"({'; '.join(WEIGHTS_MISSING)}): python -m "
                                   "avemo_ros.tools.fetch_weights mtcnn")


@pytest.fixture(scope="module")
def detector():
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    yield make_detector("mtcnn")
    cv2.setNumThreads(threads)


@pytest.fixture()
def torch_one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(threads)


@needs_mtcnn
@needs_torch
def test_onnx_matches_our_pytorch_networks_on_random_input(torch_one_thread):
    import onnxruntime as ort

    from training.models.mtcnn import load_network

    torch = torch_one_thread
    gen = torch.Generator().manual_seed(3)
    shapes = {"pnet": [(1, 3, 12, 12), (1, 3, 61, 83), (3, 3, 40, 30)],
              "rnet": [(9, 3, 24, 24)], "onet": [(4, 3, 48, 48)]}
    for net_name, file in ONNX_FILES.items():
        net = load_network(net_name, MODEL_DIR / f"{net_name}.pt")
        sess = ort.InferenceSession(str(MODEL_DIR / file), providers=["CPUExecutionProvider"])
        for shape in shapes[net_name]:
            x = torch.rand(*shape, generator=gen) * 2 - 1
            with torch.no_grad():
                ref = [t.numpy() for t in net(x)]
            got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
            assert len(got) == len(ref) == (3 if net_name == "onet" else 2)
            for r, g in zip(ref, got):
                assert r.shape == g.shape and np.abs(r - g).max() < 1e-4, (net_name, shape)
        if net_name == "pnet":  # one 12x12 window in, one cell out; 2-pixel grid
            assert got[0].shape == (3, 15, 10) and got[1].shape == (3, 4, 15, 10)
    record = json.loads((MODEL_DIR / RECORD).read_text())
    assert all(v["parity_max_abs"] < 1e-4 for v in record["onnx"].values())


@needs_weights
@needs_torch
def test_the_export_writes_checked_files_once(tmp_path, torch_one_thread):
    from training import mtcnn_export

    src = SOURCES["mtcnn"]
    folder = tmp_path / "mtcnn"
    folder.mkdir()
    for member, sha in src.members.items():
        shutil.copyfile(MODEL_DIR / src.dest_name(member), folder / src.dest_name(member))
    assert export_problems(folder) and mtcnn_export.main(["--weights-dir", str(folder),
                                                          "--check"]) == 1
    record, written = mtcnn_export.export(folder)
    assert written and export_problems(folder) == []
    assert record["weights"]["pnet.pt"]["sha256"] == src.members["facenet_pytorch/data/pnet.pt"]
    assert all(record["onnx"][f]["sha256"] == sha256_of(folder / f) for f in ONNX_FILES.values())
    assert all(v["parity_max_abs"] < mtcnn_export.ATOL for v in record["onnx"].values())
    again, written = mtcnn_export.export(folder)
    assert not written and again == record
    (folder / "rnet.onnx").write_bytes(b"changed")
    assert any("rnet.onnx" in p for p in export_problems(folder))
    other = tmp_path / "elsewhere"
    other.mkdir()
    with pytest.raises(mtcnn_export.WeightsError, match="pnet.pt"):
        mtcnn_export.ensure_weights(other)


@needs_mtcnn
@needs_skimage
def test_the_photograph_itself(detector):
    from skimage import data

    grey = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    for min_face in (24, 64):
        dets = detector.detect(grey, min_face)
        assert len(dets) == 1 and iou(dets[0].box, FACE_BOX) > 0.7, (min_face, dets)
        assert dets[0].score > 0.9
        x, y, w, h = dets[0].box
        assert 1.0 < h / w < 1.5  # O-Net's box: forehead to chin, taller than wide


@needs_mtcnn
@needs_skimage
@pytest.mark.parametrize("resolution,sizes", [((640, 480), (40, 64, 120, 240)),
                                              ((1280, 720), (48, 96, 200, 400))])
def test_the_astronaut_at_several_sizes(detector, resolution, sizes):
    rng = np.random.default_rng(7)
    false = 0
    for px in sizes:
        for condition in ("clean", "two_people", "dark"):
            if condition == "two_people" and px > resolution[0] / 2 - 4:
                continue
            s = make_scene(rng, resolution, px, condition)
            dets = detector.detect(s.grey, min(64, 0.8 * px))
            for t in s.truth:
                assert any(matches(d.box, t) for d in dets), (px, condition, t, dets)
            false += sum(not any(matches(d.box, t) for t in s.truth) for d in dets)
            assert all(d.box[0] >= -px and d.box[2] > 0 for d in dets)
    assert false <= 1


@needs_mtcnn
@needs_skimage
def test_minimum_and_maximum_face_are_in_camera_pixels(detector):
    rng = np.random.default_rng(5)
    small = make_scene(rng, (1280, 720), 48, "clean")
    assert not detector.detect(small.grey, 80)  # below the minimum: not reported
    assert any(matches(d.box, small.truth[0]) for d in detector.detect(small.grey, 36))
    big = make_scene(rng, (1280, 720), 256, "clean")
    assert any(matches(d.box, big.truth[0]) for d in detector.detect(big.grey, 64))
    assert not detector.detect(big.grey, 36, max_face_px=100)  # above the maximum
    levels = detector.levels((720, 1280), 12, 100, detector.scale_factor)
    assert levels[0] == 1.0 and 12 / levels[-1] <= 100 < 12 / levels[-1] * 1.42
    assert len(detector.levels((720, 1280), 12, None, detector.scale_factor)) > len(levels)
    assert detector.detect(np.zeros((240, 320), np.uint8), 64) == []
    assert detector.detect(np.zeros((240, 320), np.uint8), 300) == []


@needs_mtcnn
def test_one_onnx_runtime_thread_by_default(detector):
    assert detector.name == "mtcnn" and detector.native_px == 12 and detector.window_px == 48
    for sess in detector._nets.values():
        assert sess.get_session_options().intra_op_num_threads == 1
    assert make_detector("mtcnn", model_path=str(MODEL_DIR), threads=2).source == str(MODEL_DIR)


def test_nms_by_union_and_by_the_smaller_box():
    boxes = np.array([[0, 0, 10, 10, 0.9], [1, 1, 11, 11, 0.8], [20, 20, 30, 30, 0.7],
                      [2, 2, 6, 6, 0.95]], np.float32)
    assert list(nms(boxes, 0.5)) == [3, 0, 2]  # the small box overlaps the first by 0.16
    assert list(nms(boxes, 0.7, "min")) == [3, 2]  # ... but lies inside both
    assert nms(np.zeros((0, 5), np.float32), 0.5).size == 0


def test_missing_or_broken_onnx_files_name_the_file_and_the_fix(tmp_path):
    assert "mtcnn" in DETECTORS
    with pytest.raises(DetectorError, match=r"pnet\.onnx not found.*fetch_weights mtcnn.*"
                                            r"training\.mtcnn_export --weights-dir"):
        make_detector("mtcnn", model_path=str(tmp_path))
    with pytest.raises(DetectorError, match="not a folder"):
        (tmp_path / "pnet.onnx").write_bytes(b"junk")
        make_detector("mtcnn", model_path=str(tmp_path / "pnet.onnx"))
    with pytest.raises(DetectorError, match="could not load the MTCNN model"):
        MtcnnDetector(tmp_path)
    assert any("missing" in p for p in export_problems(tmp_path))
    with pytest.raises(DetectorError, match="only yunet and mtcnn"):
        make_detector("haar_alt2", model_path=str(tmp_path))
