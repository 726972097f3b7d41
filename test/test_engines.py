"""TensorRT engines: build records, trtexec commands, INT8 calibration data, engine refusal
and backend selection.

The pure parts run everywhere; the engine builds need TensorRT 10 + pycuda + an NVIDIA GPU
and are skipped elsewhere. Uses the trained bundle (``make model``), copied per test.
"""
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avemo_ros.backends import (BackendChoice, EngineIncompatible, OnnxRuntimeBackend, TensorIO,
                                TensorRTRuntime, check_engine_compatibility, check_engine_file,
                                choose_backend, engine_io_mismatches, onnxruntime_providers,
                                open_backend, tensorrt_available, tensorrt_unavailable_reason)
from avemo_ros.estimator import EmotionEstimator
from avemo_ros.manifest import (FEATURES, LOGITS, MANIFEST_NAME, BundleError, load_manifest,
                                sha256_file)
from training.engines import (CalibrationFeed, EngineBuildError, calibration_batches,
                              calibration_table_name, calibration_windows, describe_parser_error,
                              engine_filename, engine_record, find_feature_files,
                              fusion_calibration_inputs, load_feature_cache, network_inputs,
                              record_engine, require_tensorrt_10, save_manifest_data,
                              split_exclusions, spread_indices,
                              trt_log_level, trtexec_command)

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = Path(os.environ.get("AVEMO_TEST_BUNDLE", ROOT / "data" / "models" / "synthetic"))
needs_bundle = pytest.mark.skipif(not (BUNDLE / MANIFEST_NAME).is_file(),
                                  reason=f"no trained bundle at {BUNDLE}: run `make model` first")
needs_trt = pytest.mark.skipif(not tensorrt_available(),
                               reason="needs TensorRT 10 and an NVIDIA GPU")

H200 = TensorRTRuntime("10.8.0", "NVIDIA H200", "9.0")
BUILT = {"file": "audio.fp16.engine", "sha256": "x", "tensorrt_version": "10.8.0",
         "gpu": "NVIDIA H200", "compute_capability": "9.0", "precision": "fp16"}


@pytest.fixture
def bundle(tmp_path):
    dst = tmp_path / "bundle"
    shutil.copytree(BUNDLE, dst)
    return dst


def fake_engine(bundle, role="audio", **changes):
    """An engine file (arbitrary bytes) recorded in the manifest as built on H200."""
    path = bundle / engine_filename(role, "fp16")
    path.write_bytes(b"not really a plan " + role.encode())
    data = json.loads((bundle / MANIFEST_NAME).read_text())
    rec = engine_record(file=path.name, sha256=sha256_file(path), tensorrt_version=H200.version,
                        gpu_name=H200.gpu_name, compute_capability=H200.compute_capability,
                        precision="fp16")
    rec.update(changes)
    save_manifest_data(bundle, record_engine(data, role, rec))
    return path


# --- engine compatibility (pure) ---------------------------------------------------------

def test_compatible_engine_passes_and_capability_may_be_a_tuple():
    check_engine_compatibility(BUILT, "10.8.0", "NVIDIA H200", "9.0")
    check_engine_compatibility(BUILT, "10.8.0", "nvidia h200", (9, 0))
    old = {k: v for k, v in BUILT.items() if k != "compute_capability"}
    check_engine_compatibility(old, "10.8.0", "NVIDIA H200", (9, 0))  # matched by name


def test_other_tensorrt_version_is_refused_naming_both():
    with pytest.raises(EngineIncompatible) as e:
        check_engine_compatibility(BUILT, "10.3.0", "NVIDIA H200", "9.0")
    msg = str(e.value)
    assert "TensorRT 10.8.0" in msg and "TensorRT 10.3.0" in msg and "audio.fp16.engine" in msg
    assert "version differs" in msg and "training.engines" in msg
    assert isinstance(e.value, BundleError)


def test_other_gpu_is_refused_naming_both():
    with pytest.raises(EngineIncompatible, match="GPU differs") as e:
        check_engine_compatibility(BUILT, "10.8.0", "Orin (nvgpu)", (8, 7))
    assert "NVIDIA H200" in str(e.value) and "Orin (nvgpu)" in str(e.value)
    assert "compute 9.0" in str(e.value) and "compute 8.7" in str(e.value)
    # Same name but another compute capability (a record from elsewhere) is refused too.
    with pytest.raises(EngineIncompatible, match="GPU differs"):
        check_engine_compatibility(BUILT, "10.8.0", "NVIDIA H200", "9.1")


def test_engine_record_without_build_info_is_refused():
    with pytest.raises(EngineIncompatible,
                       match="does not record its \\['tensorrt_version', 'gpu'\\]"):
        check_engine_compatibility({"file": "a.engine"}, "10.8.0", "NVIDIA H200", "9.0")


def test_engine_checksum_and_missing_file(tmp_path):
    p = tmp_path / "a.engine"
    p.write_bytes(b"plan")
    check_engine_file(p, {"sha256": sha256_file(p)})
    p.write_bytes(b"plan, changed")
    with pytest.raises(EngineIncompatible, match="a.engine checksum .* does not match"):
        check_engine_file(p, {"sha256": "0" * 64})
    with pytest.raises(EngineIncompatible, match="missing"):
        check_engine_file(tmp_path / "none.engine", {"sha256": "0" * 64})


@needs_bundle
def test_engine_io_mismatches_are_listed():
    spec = load_manifest(BUNDLE).models["audio"]
    shape = tuple(spec.inputs[0].shape)  # the bundle's spectrogram input, e.g. (1, 1, 100, 150)
    io = [TensorIO("spectrogram", shape, "float32", True),
          TensorIO("logits", (1, 8), "float32", False),
          TensorIO("features", (1, 64), "float32", False)]
    assert engine_io_mismatches(spec, io) == []
    wrong = (*shape[:2], shape[2] + 28, shape[3])
    bad = [TensorIO("spectrogram", wrong, "float32", True),
           TensorIO("logits", (1, 8), "float16", False), TensorIO("extra", (1,), "float32", False)]
    problems = engine_io_mismatches(spec, bad)
    assert any(f"shape {list(wrong)}, manifest {list(shape)}" in p for p in problems)
    assert any("'logits' has dtype float16" in p for p in problems)
    assert any("'features' is missing" in p for p in problems)
    assert any("extra output 'extra'" in p for p in problems)


# --- backend selection (pure decisions, real files) ---------------------------------------

@needs_bundle
def test_auto_selection_reasons(bundle):
    spec = lambda: load_manifest(bundle).models["audio"]  # noqa: E731
    c = choose_backend("auto", spec(), bundle, H200)
    assert c.backend == "onnxruntime" and "no TensorRT engine" in c.reason
    path = fake_engine(bundle)
    assert choose_backend("auto", spec(), bundle, None, "TensorRT is not importable (x)") == \
        BackendChoice("onnxruntime", "TensorRT is not importable (x)")
    assert choose_backend("auto", spec(), bundle, H200) == BackendChoice("tensorrt", "", path)
    c = choose_backend("auto", spec(), bundle, TensorRTRuntime("10.9.0", "NVIDIA H200", "9.0"))
    assert c.backend == "onnxruntime" and "10.8.0" in c.reason and "10.9.0" in c.reason
    c = choose_backend("auto", spec(), bundle, TensorRTRuntime("10.8.0", "NVIDIA L4", "8.9"))
    assert c.backend == "onnxruntime" and "NVIDIA L4" in c.reason
    path.write_bytes(b"corrupted")
    c = choose_backend("auto", spec(), bundle, H200)
    assert c.backend == "onnxruntime" and "checksum" in c.reason
    assert choose_backend("onnxruntime", spec(), bundle, H200).backend == "onnxruntime"


@needs_bundle
def test_tensorrt_requested_refuses_instead_of_falling_back(bundle):
    spec = load_manifest(bundle).models["audio"]
    with pytest.raises(BundleError, match="tensorrt backend requested for audio.onnx but the "
                                          "bundle has no TensorRT engine"):
        choose_backend("tensorrt", spec, bundle, H200)
    fake_engine(bundle)
    spec = load_manifest(bundle).models["audio"]
    with pytest.raises(EngineIncompatible, match="TensorRT 10.8.0 .* TensorRT 10.9.0"):
        choose_backend("tensorrt", spec, bundle, TensorRTRuntime("10.9.0", "NVIDIA H200", "9.0"))
    with pytest.raises(ValueError, match="unknown backend"):
        choose_backend("torch", spec, bundle, H200)


@needs_bundle
@pytest.mark.skipif(tensorrt_available(), reason="checks the fallback where TensorRT is absent")
def test_auto_falls_back_with_one_log_line_per_network(bundle, caplog):
    fake_engine(bundle)
    m = load_manifest(bundle)
    caplog.set_level(logging.INFO, logger="avemo_ros.backends")
    net = open_backend(m.models["audio"], bundle, "auto")
    assert net.name == "onnxruntime" and net.device in ("cpu", "cuda")
    lines = [r for r in caplog.records if r.name == "avemo_ros.backends"]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING  # an unusable engine
    assert "audio.onnx" in lines[0].getMessage()
    assert tensorrt_unavailable_reason() in lines[0].getMessage()
    caplog.clear()
    open_backend(m.models["video"], bundle, "auto")  # no engine: normal, INFO
    lines = [r for r in caplog.records if r.name == "avemo_ros.backends"]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO
    assert "no TensorRT engine" in lines[0].getMessage()
    with pytest.raises(BundleError, match="tensorrt backend requested"):
        open_backend(m.models["audio"], bundle, "tensorrt")


@needs_bundle
@pytest.mark.skipif(tensorrt_available(), reason="checks the refusal where TensorRT is absent")
def test_engine_cli_fails_clearly_without_tensorrt(bundle, capsys):
    from training.engines import main

    before = (bundle / MANIFEST_NAME).read_bytes()
    assert main(["--bundle", str(bundle), "--precision", "fp16"]) == 1
    err = capsys.readouterr().err
    assert "engine build failed: cannot build TensorRT engines here" in err
    assert tensorrt_unavailable_reason() in err
    assert (bundle / MANIFEST_NAME).read_bytes() == before and not list(bundle.glob("*.engine"))


def test_onnxruntime_providers_prefer_cuda_when_available():
    assert onnxruntime_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    both = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnxruntime_providers(both) == both
    assert onnxruntime_providers(both, use_cuda=False) == ["CPUExecutionProvider"]


@needs_bundle
def test_runtime_never_imports_torch():
    code = ("import sys, numpy as np\n"
            "from avemo_ros.estimator import EmotionEstimator\n"
            "import training.engines\n"
            f"est = EmotionEstimator({str(BUNDLE)!r}, 'auto', threads=1)\n"
            "m = est.manifest\n"
            "est.infer(np.zeros(m.audio.shape, np.float32), np.zeros(m.video.shape, np.float32))\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "print(sorted(set(est.backend_names.values())))\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "onnxruntime" in r.stdout or "tensorrt" in r.stdout


# --- build records, trtexec (pure) --------------------------------------------------------

def test_trtexec_command_per_precision():
    fp16 = shlex.split(trtexec_command("b/audio.onnx", "b/audio.fp16.engine", "fp16",
                                       workspace_mb=512))
    assert fp16 == ["trtexec", "--onnx=b/audio.onnx", "--saveEngine=b/audio.fp16.engine",
                    "--memPoolSize=workspace:512M", "--fp16", "--skipInference"]
    fp32 = shlex.split(trtexec_command("a.onnx", "a.fp32.engine", "fp32"))
    assert "--fp16" not in fp32 and "--int8" not in fp32
    assert "--memPoolSize=workspace:1024M" in fp32
    int8 = shlex.split(trtexec_command("my dir/a.onnx", "my dir/a.int8.engine", "int8",
                                       calib_table="my dir/a.int8.calib"))
    assert "--onnx=my dir/a.onnx" in int8 and "--int8" in int8 and "--fp16" in int8
    assert "--calib=my dir/a.int8.calib" in int8
    with pytest.raises(ValueError, match="calibration table"):
        trtexec_command("a.onnx", "a.engine", "int8")
    with pytest.raises(ValueError, match="precision 'bf16'"):
        trtexec_command("a.onnx", "a.engine", "bf16")


def test_builder_requires_tensorrt_10():
    require_tensorrt_10("10.8.0.43")
    with pytest.raises(EngineBuildError, match="TensorRT 10 API; this is TensorRT 11.1.0"):
        require_tensorrt_10("11.1.0")


def test_engine_and_table_names():
    assert engine_filename("video", "int8") == "video.int8.engine"
    assert calibration_table_name("audio", "ab" * 32) == "audio.abababababab.int8.calib"
    with pytest.raises(ValueError):
        engine_filename("audio", "int4")


@needs_bundle
def test_engine_record_round_trips_through_the_manifest(bundle):
    rec = engine_record(file="audio.fp16.engine", sha256="f" * 64, tensorrt_version="10.8.0",
                        gpu_name="NVIDIA H200", compute_capability="9.0", precision="fp16",
                        workspace_mb=1024)
    assert set(rec) == {"file", "sha256", "tensorrt_version", "gpu", "compute_capability",
                        "precision", "built_at", "workspace_mb"}
    assert rec["built_at"].endswith("+00:00")  # UTC, ISO 8601
    data = json.loads((bundle / MANIFEST_NAME).read_text())
    before = load_manifest(bundle).model_id
    save_manifest_data(bundle, record_engine(data, "audio", rec))
    m = load_manifest(bundle)
    assert m.models["audio"].engine == rec and m.models["video"].engine is None
    assert m.model_id == before  # engines do not change the model identity
    assert not list(bundle.glob("*.tmp"))
    with pytest.raises(BundleError, match="no 'speech' network"):
        record_engine(data, "speech", rec)


def test_parser_errors_are_described_with_their_node():
    class Code:
        name = "UNSUPPORTED_NODE"

    class Err:
        def node(self): return 7
        def node_operator(self): return "GridSample"
        def node_name(self): return "/warp/GridSample"
        def code(self): return Code()
        def desc(self): return "no importer"

    assert describe_parser_error(Err()) == \
        "node 7 (GridSample '/warp/GridSample'): UNSUPPORTED_NODE: no importer"

    class GraphErr:
        def node(self): return -1
        def desc(self): return "invalid graph"

    assert describe_parser_error(GraphErr()) == "graph: invalid graph"
    assert trt_log_level("ERROR") == logging.ERROR and trt_log_level("VERBOSE") is None


# --- INT8 calibration data (pure) ---------------------------------------------------------

def test_calibration_batches_have_the_network_input_shape():
    rng = np.random.default_rng(0)
    spec = rng.standard_normal((5, 200, 300)).astype(np.float16)
    batches = list(calibration_batches({"spectrogram": spec}, {"spectrogram": [1, 1, 200, 300]}))
    assert len(batches) == 5
    for i, b in enumerate(batches):
        a = b["spectrogram"]
        assert a.shape == (1, 1, 200, 300) and a.dtype == np.float32 and a.flags.c_contiguous
        np.testing.assert_array_equal(a[0, 0], spec[i].astype(np.float32))
    # Two inputs, batch of 2: windows stay paired, the odd one out is left out.
    fa, fv = rng.standard_normal((5, 64)), rng.standard_normal((5, 64))
    shapes = {"audio_features": [2, 64], "video_features": [2, 64]}
    batches = list(calibration_batches({"audio_features": fa, "video_features": fv}, shapes))
    assert len(batches) == 2
    np.testing.assert_allclose(batches[1]["video_features"], fv[2:4].astype(np.float32))


def test_calibration_batches_refuse_bad_data():
    shape = {"spectrogram": [1, 1, 200, 300]}
    with pytest.raises(EngineBuildError, match="shape \\[128, 300\\].*other preprocessing"):
        list(calibration_batches({"spectrogram": np.zeros((3, 128, 300))}, shape))
    bad = np.zeros((3, 200, 300))
    bad[1, 5, 5] = np.nan
    with pytest.raises(EngineBuildError, match="NaN"):
        list(calibration_batches({"spectrogram": bad}, shape))
    with pytest.raises(EngineBuildError, match="no calibration windows"):
        list(calibration_batches({"spectrogram": np.zeros((0, 200, 300))}, shape))
    with pytest.raises(EngineBuildError, match="network takes \\['spectrogram'\\]"):
        list(calibration_batches({"faces": np.zeros((3, 200, 300))}, shape))
    with pytest.raises(EngineBuildError, match="different window counts"):
        list(calibration_batches({"a": np.zeros((3, 4)), "b": np.zeros((2, 4))},
                                 {"a": [1, 4], "b": [1, 4]}))


def test_calibration_feed_hands_out_batches_in_name_order_and_reuses_the_table(tmp_path):
    uploaded = []

    def upload(name, array):
        uploaded.append((name, array.copy()))
        return 1000 + len(uploaded)

    batches = [{"a": np.full((1, 2), i, np.float32), "b": np.full((1, 3), -i, np.float32)}
               for i in range(3)]
    table = tmp_path / "net.int8.calib"
    feed = CalibrationFeed(batches, table, upload)
    assert feed.read_table() is None  # nothing to reuse: calibrate from data
    assert feed.next_pointers(["b", "a"]) == [1001, 1002]
    assert [n for n, _ in uploaded] == ["b", "a"] and uploaded[0][1][0, 0] == 0
    assert feed.next_pointers(["b", "a"]) == [1003, 1004]
    assert feed.next_pointers(["b", "a"]) == [1005, 1006]
    assert feed.next_pointers(["b", "a"]) is None and feed.batches_given == 3
    feed.write_table(memoryview(b"TRT-calibration-table"))
    again = CalibrationFeed([], table, upload)
    assert again.read_table() == b"TRT-calibration-table" and again.table_reused
    assert CalibrationFeed([], table, upload, reuse_table=False).read_table() is None


def test_calibration_feed_keeps_errors_for_the_builder(tmp_path):
    def failing_upload(name, array):
        raise RuntimeError("out of device memory")

    feed = CalibrationFeed([{"a": np.zeros((1, 2), np.float32)}], tmp_path / "t", failing_upload)
    assert feed.next_pointers(["a"]) is None
    assert "out of device memory" in str(feed.error)
    feed = CalibrationFeed([{"a": np.zeros((1, 2), np.float32)}], tmp_path / "t", lambda n, a: 1)
    assert feed.next_pointers(["a", "b"]) is None and "calibration inputs ['b']" in str(feed.error)


def test_calibration_windows_leave_out_held_out_actors_and_missing_modalities():
    n = 12
    feats = {"audio": np.arange(n, dtype=np.float16)[:, None, None] * np.ones((1, 2, 3)),
             "video": -np.arange(n, dtype=np.float16)[:, None, None, None] * np.ones((1, 2, 2, 2)),
             "has_audio": np.array([1] * 10 + [0] * 2, bool),
             "has_face": np.array([0, 0] + [1] * 10, bool),
             "groups": np.array([1, 1, 1, 1, 2, 2, 2, 2, 19, 19, 20, 20])}
    w = calibration_windows(feats, limit=100, exclude_groups=split_exclusions(
        {"split": {"test_actors": [19, 20], "val_actors": [18]}}))
    assert w["audio"]["audio"][:, 0, 0].tolist() == list(range(8))
    assert w["video"]["video"][:, 0, 0, 0].tolist() == [-i for i in range(2, 8)]
    assert w["fusion"]["audio"][:, 0, 0].tolist() == list(range(2, 8))
    assert (w["fusion"]["video"][:, 0, 0, 0] == -w["fusion"]["audio"][:, 0, 0]).all()
    few = calibration_windows(feats, limit=3)
    assert few["audio"]["audio"][:, 0, 0].tolist() == [0, 4, 9]  # spread, not the first 3
    # Older single-file caches named the arrays spectrograms / faces.
    old = {("spectrograms" if k == "audio" else "faces" if k == "video" else k): v
           for k, v in feats.items()}
    assert calibration_windows(old)["audio"]["audio"].shape == (10, 2, 3)
    with pytest.raises(EngineBuildError, match="lacks \\['video'\\]"):
        calibration_windows({k: v for k, v in feats.items() if k != "video"})


def _clip_npz(path, n, audio_shape=(200, 300), video_shape=(20, 100, 60), seed=0):
    rng = np.random.default_rng(seed)
    np.savez(path, audio=rng.standard_normal((n, *audio_shape)).astype(np.float16),
             video=rng.standard_normal((n, *video_shape)).astype(np.float16),
             has_audio=np.ones(n, bool), has_face=np.arange(n) % 2 == 0,
             start=np.arange(n, dtype=np.float64))


@needs_bundle
def test_feature_cache_of_the_bundle_preprocessing_is_found_and_loaded(tmp_path):
    m = load_manifest(BUNDLE)
    audio, video = m.audio.to_dict(), m.video.to_dict()
    mine, other = tmp_path / "features-aaaa", tmp_path / "features-bbbb"
    for d, a in ((mine, audio), (other, {**audio, "n_bins": 128})):
        d.mkdir()
        (d / "params.json").write_text(json.dumps({"audio": a, "video": video, "hop_s": 0.5}))
    a_shape, v_shape = tuple(m.audio.shape), tuple(m.video.shape)
    _clip_npz(mine / "clip1.npz", 3, audio_shape=a_shape, video_shape=v_shape)
    _clip_npz(mine / "clip2.npz", 2, audio_shape=a_shape, video_shape=v_shape, seed=1)
    _clip_npz(other / "clip1.npz", 3, audio_shape=(128, a_shape[1]), video_shape=v_shape)
    files = find_feature_files(tmp_path, audio, video)
    assert files == [mine / "clip1.npz", mine / "clip2.npz"]
    assert find_feature_files(mine, audio, video) == files
    feats = load_feature_cache(files)
    assert feats["audio"].shape == (5, *a_shape) and "groups" not in feats
    w = calibration_windows(feats)
    assert len(w["audio"]["audio"]) == 5 and len(w["fusion"]["video"]) == 3  # faces in 0, 2, 0
    batches = list(calibration_batches(network_inputs(m.models["audio"], w["audio"]["audio"]),
                                       {t.name: t.shape for t in m.models["audio"].inputs}))
    assert len(batches) == 5 and batches[0]["spectrogram"].shape == (1, 1, *a_shape)
    with pytest.raises(EngineBuildError, match="no feature cache made with the bundle"):
        find_feature_files(other, audio, video)


def test_spread_indices():
    assert spread_indices(10, 3).tolist() == [0, 4, 9]
    assert spread_indices(3, 10).tolist() == [0, 1, 2]
    assert spread_indices(0, 4).size == 0 and spread_indices(5, 0).size == 0
    idx = spread_indices(1000, 512)
    assert len(idx) == len(set(idx.tolist())) <= 512 and idx[0] == 0 and idx[-1] == 999


@needs_bundle
def test_fusion_is_calibrated_on_the_audio_and_video_network_outputs():
    m = load_manifest(BUNDLE)
    nets = [OnnxRuntimeBackend(BUNDLE / m.models[r].file, threads=1) for r in ("audio", "video")]
    rng = np.random.default_rng(1)
    audio = rng.standard_normal((3, *m.audio.shape)).astype(np.float16)
    video = rng.standard_normal((3, *m.video.shape)).astype(np.float16)
    got = fusion_calibration_inputs(m.models, *nets, audio, video)
    fusion = m.models["fusion"]
    names = [t.name for t in fusion.inputs]
    assert list(got) == names
    for t in fusion.inputs:
        assert got[t.name].shape == (3, int(np.prod(t.shape[1:])))
    v_in = m.models["video"].inputs[0]
    source = FEATURES if names[0].endswith("features") else LOGITS
    ref = nets[1].run({v_in.name: video[2].astype(np.float32).reshape(v_in.shape)})[source]
    np.testing.assert_allclose(got[names[1]][2], ref.reshape(-1), rtol=1e-6)
    batches = list(calibration_batches(got, {t.name: t.shape for t in fusion.inputs}))
    assert len(batches) == 3 and batches[0][names[0]].shape == tuple(fusion.inputs[0].shape)


# --- on a GPU with TensorRT 10 -------------------------------------------------------------

def _inputs(spec, rng):
    return {t.name: rng.standard_normal(t.shape).astype(np.float32) for t in spec.inputs}


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@needs_bundle
@needs_trt
def test_fp16_engines_match_onnxruntime(bundle):
    from training.engines import build_engines

    records = build_engines(bundle, "fp16")
    m = load_manifest(bundle)
    rng = np.random.default_rng(0)
    for role, spec in m.models.items():
        rec = spec.engine
        assert rec == records[role] and rec["file"] == f"{role}.fp16.engine"
        assert rec["precision"] == "fp16" and rec["sha256"] == sha256_file(bundle / rec["file"])
        trt_net = open_backend(spec, bundle, "tensorrt")
        ort_net = open_backend(spec, bundle, "onnxruntime")
        assert trt_net.name == "tensorrt"
        for _ in range(3):
            x = _inputs(spec, rng)
            got, ref = trt_net.run(x), ort_net.run(x)
            np.testing.assert_allclose(got[LOGITS], ref[LOGITS], atol=5e-2, rtol=1e-2)
            np.testing.assert_allclose(_softmax(got[LOGITS]), _softmax(ref[LOGITS]), atol=1e-2)
        trt_net.close()
        ort_net.close()
    est = EmotionEstimator(bundle, "auto")
    assert set(est.backend_names.values()) == {"tensorrt"}
    est.close()


@needs_bundle
@needs_trt
def test_engine_of_another_tensorrt_version_is_refused(bundle, caplog):
    from training.engines import build_engines

    build_engines(bundle, "fp16", roles=["audio"])
    data = json.loads((bundle / MANIFEST_NAME).read_text())
    data["models"]["audio"]["engine"]["tensorrt_version"] = "9.9.9"
    save_manifest_data(bundle, data)
    m = load_manifest(bundle)
    with pytest.raises(EngineIncompatible, match="TensorRT 9.9.9 .*this runtime is TensorRT"):
        open_backend(m.models["audio"], bundle, "tensorrt")
    caplog.set_level(logging.INFO, logger="avemo_ros.backends")
    assert open_backend(m.models["audio"], bundle, "auto").name == "onnxruntime"
    assert any("9.9.9" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


@needs_bundle
@needs_trt
def test_int8_engine_calibrates_once_then_reuses_its_table(bundle, tmp_path):
    from training.engines import build_engines

    rng = np.random.default_rng(0)
    npz = tmp_path / "features-test.npz"
    n = 24
    m = load_manifest(bundle)
    np.savez(npz, audio=rng.standard_normal((n, *m.audio.shape)).astype(np.float16),
             video=rng.standard_normal((n, *m.video.shape)).astype(np.float16),
             has_audio=np.ones(n, bool), has_face=np.ones(n, bool), groups=np.ones(n, np.int64))
    rec = build_engines(bundle, "int8", roles=["audio", "fusion"], calib_npz=[npz],
                        calib_windows=16)
    for role in ("audio", "fusion"):
        assert rec[role]["calibration"]["batches"] == 16
        assert not rec[role]["calibration"]["reused_table"]
        assert (bundle / rec[role]["calibration"]["table"]).is_file()
    again = build_engines(bundle, "int8", roles=["audio"])  # no data: the table is reused
    assert again["audio"]["calibration"]["reused_table"]
    m = load_manifest(bundle)
    x = _inputs(m.models["audio"], rng)
    got = open_backend(m.models["audio"], bundle, "tensorrt").run(x)
    assert np.isfinite(got[LOGITS]).all() and got[LOGITS].shape == (1, len(m.labels))


@needs_bundle
@needs_trt
def test_unparsable_onnx_fails_with_the_parser_errors(bundle):
    from training.engines import build_engine

    bad = bundle / "broken.onnx"
    bad.write_bytes((bundle / "audio.onnx").read_bytes()[:5000])
    with pytest.raises(EngineBuildError, match="cannot parse broken.onnx"):
        build_engine(bad, bundle / "broken.fp16.engine", load_manifest(bundle).models["audio"])
    assert not (bundle / "broken.fp16.engine").exists()
