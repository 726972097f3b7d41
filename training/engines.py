"""Build TensorRT engines (TensorRT 10 Python API) for the networks of a model bundle.

    python -m training.engines --bundle data/models/synthetic [--precision fp16|int8|fp32]
        [--roles audio video fusion] [--workspace-mb 1024]
        [--calib-cache data/cache | --calib-npz FILE ...] [--calib-windows 512] [--recalibrate]

Per network: parse the ONNX file (every parser error is logged with its node and the
build fails naming the file), log each I/O tensor, build with the requested precision,
deserialize the plan once to check its I/O tensors against the manifest, write
``<role>.<precision>.engine`` and record file, SHA-256, TensorRT version, GPU (name and
compute capability), precision and build time in the manifest's ``models.<role>.engine``.
The CLI prints the equivalent ``trtexec`` command of each engine.

INT8 (entropy calibration, FP16 allowed for layers without an INT8 kernel):

* audio / video networks are calibrated on windows of a training feature cache
  (``training/features.py``; ``--calib-cache`` picks the cache made with the bundle's
  preprocessing): windows where that modality is present, spread evenly over the cache,
  at most ``--calib-windows``; where the cache records actor / session groups, the
  manifest's ``training.split`` test and validation groups are left out. No labels are
  used.
* the fusion network's inputs are the audio and video networks' outputs (features, or
  logits for late fusion) and it only runs when both modalities are present, so it is
  calibrated on what the FP32 ONNX audio / video networks (ONNX Runtime) compute for
  windows with both modalities: the distribution it sees at run time.
* each calibration table is written as ``<role>.<ONNX sha256[:12]>.int8.calib`` beside the
  engines and reused on the next build of the same ONNX file (then no feature cache is
  needed); a changed network gets a new table name, ``--recalibrate`` ignores the table.

Everything that does not need TensorRT is a plain function (tested without a GPU);
``build_engine`` needs TensorRT 10, pycuda and an NVIDIA GPU. Nothing here imports torch.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Optional, Sequence

import numpy as np

from avemo_ros.backends import (InferenceBackend, OnnxRuntimeBackend, engine_io,
                                engine_io_mismatches, probe_tensorrt)
from avemo_ros.manifest import (MANIFEST_NAME, ROLES, BundleError, ModelSpec, fusion_source,
                                load_manifest, sha256_file)

log = logging.getLogger("training.engines")
PRECISIONS = ("fp16", "int8", "fp32")
DEFAULT_WORKSPACE_MB = 1024
DEFAULT_CALIB_WINDOWS = 512


class EngineBuildError(RuntimeError):
    """TensorRT could not parse, calibrate or build a network, or the result is wrong."""


# --- names, commands, manifest records (pure) --------------------------------------------

def engine_filename(role: str, precision: str) -> str:
    """``<role>.<precision>.engine``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    return f"{role}.{precision}.engine"


def calibration_table_name(role: str, onnx_sha256: str) -> str:
    """INT8 calibration table of one ONNX file: a changed network gets a new name."""
    return f"{role}.{onnx_sha256[:12]}.int8.calib"


def trtexec_command(onnx: Path | str, engine: Path | str, precision: str = "fp16", *,
                    workspace_mb: int = DEFAULT_WORKSPACE_MB,
                    calib_table: Path | str | None = None) -> str:
    """The ``trtexec`` command line that builds the same engine (shell-quoted).

    INT8 needs ``calib_table``: trtexec reads a calibration table, it cannot calibrate
    from our feature caches.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    if workspace_mb <= 0:
        raise ValueError(f"workspace_mb must be positive, got {workspace_mb}")
    parts = ["trtexec", f"--onnx={onnx}", f"--saveEngine={engine}",
             f"--memPoolSize=workspace:{int(workspace_mb)}M"]
    if precision in ("fp16", "int8"):
        parts.append("--fp16")
    if precision == "int8":
        if calib_table is None:
            raise ValueError("an int8 trtexec command needs the calibration table (--calib)")
        parts += ["--int8", f"--calib={calib_table}"]
    parts.append("--skipInference")
    return " ".join(shlex.quote(p) for p in parts)


def engine_record(*, file: str, sha256: str, tensorrt_version: str, gpu_name: str,
                  compute_capability: str, precision: str, built_at: Optional[str] = None,
                  workspace_mb: Optional[int] = None, calibration: Optional[dict] = None) -> dict:
    """The ``ModelSpec.engine`` entry of one built engine."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    rec = {"file": file, "sha256": sha256, "tensorrt_version": str(tensorrt_version),
           "gpu": gpu_name, "compute_capability": str(compute_capability),
           "precision": precision,
           "built_at": built_at or _dt.datetime.now(_dt.timezone.utc).isoformat(
               timespec="seconds")}
    if workspace_mb is not None:
        rec["workspace_mb"] = int(workspace_mb)
    if calibration:
        rec["calibration"] = dict(calibration)
    return rec


def record_engine(manifest_data: dict, role: str, record: dict) -> dict:
    """Put ``record`` into ``manifest_data["models"][role]["engine"]`` (in place); returns it."""
    models = manifest_data.get("models", {})
    if role not in models:
        raise BundleError(f"manifest has no {role!r} network to record an engine for")
    models[role]["engine"] = dict(record)
    return manifest_data


def save_manifest_data(bundle_dir: Path | str, data: dict) -> Path:
    """Write the manifest JSON atomically (a crash never leaves half a manifest)."""
    path = Path(bundle_dir) / MANIFEST_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def describe_parser_error(err) -> str:
    """One line for a TensorRT ``ParserError``: node index, operator and name, code, text."""
    def get(attr, default=None):
        fn = getattr(err, attr, None)
        try:
            return fn() if callable(fn) else default
        except Exception:  # a binding without that accessor
            return default

    node, op, name = get("node", -1), get("node_operator", ""), get("node_name", "")
    where = "graph" if node is None or node < 0 else f"node {node}"
    if op or name:
        where += f" ({op or '?'} {name!r})"
    code = get("code")
    code = getattr(code, "name", code)
    desc = get("desc", str(err))
    return f"{where}: {code}: {desc}" if code else f"{where}: {desc}"


def require_tensorrt_10(version: str) -> None:
    """This builder uses TensorRT 10's weakly typed precision flags and INT8 calibrator
    (both gone in TensorRT 11, deprecated since 10.1): refuse other major versions."""
    major = str(version).split(".")[0]
    if major != "10":
        raise EngineBuildError(f"training.engines builds with the TensorRT 10 API; this is "
                               f"TensorRT {version}")


def trt_log_level(severity_name: str) -> Optional[int]:
    """Python logging level for a TensorRT logger severity; None: drop (VERBOSE)."""
    return {"INTERNAL_ERROR": logging.CRITICAL, "ERROR": logging.ERROR,
            "WARNING": logging.WARNING, "INFO": logging.DEBUG}.get(severity_name)


# --- INT8 calibration data (pure) --------------------------------------------------------

def spread_indices(n: int, k: int) -> np.ndarray:
    """At most ``k`` distinct indices of range(n), evenly spread and deterministic."""
    if n <= 0 or k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k >= n:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))


def split_exclusions(training: Mapping) -> list[int]:
    """Actors / speakers held out in the manifest's training split (not to calibrate on)."""
    split = (training or {}).get("split", {}) or {}
    return sorted({int(g) for key in ("test_actors", "val_actors", "test_groups", "val_groups")
                   for g in split.get(key, [])})


def calibration_windows(features: Mapping[str, np.ndarray], limit: int = DEFAULT_CALIB_WINDOWS,
                        exclude_groups: Sequence[int] = ()) -> dict[str, dict[str, np.ndarray]]:
    """Role -> {modality: stacked feature windows} chosen from a feature cache.

    ``features`` holds FeatureSet fields: ``audio`` and ``video`` windows (older caches:
    ``spectrograms``, ``faces``), ``has_audio``, ``has_face`` and optionally ``groups``.
    audio: windows with audio; video: windows with a face; fusion: windows with both
    (``fusion_calibration_inputs`` turns them into the fusion network's inputs). Windows
    of ``exclude_groups`` are left out when the cache has groups; at most ``limit`` per
    role, spread evenly.
    """
    features = _canonical_features(features)
    has_a = np.asarray(features["has_audio"], bool)
    has_v = np.asarray(features["has_face"], bool)
    keep = np.ones(len(has_a), bool)
    if len(exclude_groups) and "groups" in features:
        keep = ~np.isin(np.asarray(features["groups"]), list(exclude_groups))
    pick = {role: np.flatnonzero(mask & keep)
            for role, mask in (("audio", has_a), ("video", has_v), ("fusion", has_a & has_v))}
    pick = {role: idx[spread_indices(len(idx), limit)] for role, idx in pick.items()}
    a, v = features["audio"], features["video"]
    return {"audio": {"audio": a[pick["audio"]]}, "video": {"video": v[pick["video"]]},
            "fusion": {"audio": a[pick["fusion"]], "video": v[pick["fusion"]]}}


def _canonical_features(features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = dict(features)
    for new, old in (("audio", "spectrograms"), ("video", "faces")):
        if new not in out and old in out:
            out[new] = out.pop(old)
    missing = [k for k in ("audio", "video", "has_audio", "has_face") if k not in out]
    if missing:
        raise EngineBuildError(f"feature cache lacks {missing}: not a training/features.py cache")
    return out


def network_inputs(spec: ModelSpec, windows: np.ndarray) -> dict[str, np.ndarray]:
    """A modality network's calibration inputs: its (single) input name -> the windows."""
    if len(spec.inputs) != 1:
        raise EngineBuildError(f"{spec.file} has {len(spec.inputs)} inputs, a modality "
                               "network has one")
    return {spec.inputs[0].name: windows}


def fusion_calibration_inputs(models: Mapping[str, ModelSpec], audio_net: InferenceBackend,
                              video_net: InferenceBackend, audio: np.ndarray,
                              video: np.ndarray) -> dict[str, np.ndarray]:
    """The fusion network's inputs for windows with both modalities, as the estimator
    feeds them at run time: the audio and video networks' features (intermediate fusion)
    or logits (late fusion), whichever its input names ask for."""
    if len(audio) != len(video):
        raise EngineBuildError(f"{len(audio)} audio windows but {len(video)} video windows")
    fusion = models["fusion"]
    source = fusion_source(fusion)
    a_name, v_name = (t.name for t in fusion.inputs)
    out: dict[str, list] = {a_name: [], v_name: []}
    for name, net, spec, windows in ((a_name, audio_net, models["audio"], audio),
                                     (v_name, video_net, models["video"], video)):
        x_spec = spec.inputs[0]
        for x in windows:
            y = net.run({x_spec.name: np.asarray(x, np.float32).reshape(x_spec.shape)})[source]
            out[name].append(y.reshape(-1))
    return {name: np.stack(v) if v else np.zeros((0, 0), np.float32) for name, v in out.items()}


def calibration_batches(arrays: Mapping[str, np.ndarray], input_shapes: Mapping[str, Sequence[int]]
                        ) -> Iterator[dict[str, np.ndarray]]:
    """Batches of the network's exact input shapes from per-input stacks of windows.

    ``arrays[name]`` holds N windows (any layout with prod(shape[1:]) values each);
    every batch takes shape[0] consecutive windows of each input as a C-contiguous float32
    array of ``input_shapes[name]``. A remainder short of a batch is left out. Raises
    EngineBuildError for missing or extra inputs, sizes that do not fit, unequal window
    counts, no windows, or non-finite values.
    """
    if set(arrays) != set(input_shapes):
        raise EngineBuildError(f"calibration data has inputs {sorted(arrays)}, the network "
                               f"takes {sorted(input_shapes)}")
    counts = {name: len(a) for name, a in arrays.items()}
    if len(set(counts.values())) != 1:
        raise EngineBuildError(f"calibration inputs have different window counts {counts}")
    n = next(iter(counts.values()), 0)
    batch = {int(s[0]) for s in input_shapes.values()}
    if len(batch) != 1 or min(batch) < 1:
        raise EngineBuildError("network inputs have differing or dynamic batch sizes "
                               f"{dict(input_shapes)}")
    b = batch.pop()
    if n < b:
        raise EngineBuildError(f"no calibration windows ({n}) for a batch of {b}")
    for name, a in arrays.items():
        per_window = int(np.prod(input_shapes[name][1:]))
        got = int(np.prod(a.shape[1:]))
        if got != per_window:
            raise EngineBuildError(
                f"calibration windows for {name!r} have shape {list(a.shape[1:])} ({got} values), "
                f"the network input {list(input_shapes[name])} takes {per_window} per window: "
                "the feature cache was made with other preprocessing")
        if not np.isfinite(a).all():
            raise EngineBuildError(f"calibration windows for {name!r} contain NaN or inf")
    for start in range(0, n - b + 1, b):
        yield {name: np.ascontiguousarray(
                   np.asarray(a[start:start + b], np.float32).reshape(tuple(input_shapes[name])))
               for name, a in arrays.items()}


class CalibrationFeed:
    """What an ``IInt8EntropyCalibrator2`` does, without TensorRT: hand out batches and
    read / write the calibration table.

    ``upload(name, array) -> device pointer`` copies one input to the GPU. Errors inside
    the callbacks cannot cross TensorRT, so they end the data (``None``) and are kept in
    ``error`` for the builder to raise.
    """

    def __init__(self, batches: Iterable[dict[str, np.ndarray]], table: Path,
                 upload: Callable[[str, np.ndarray], int], *, batch_size: int = 1,
                 reuse_table: bool = True):
        self._batches = iter(batches)
        self.table = Path(table)
        self._upload = upload
        self._batch_size = batch_size
        self.reuse_table = reuse_table
        self.batches_given = 0
        self.table_reused = False
        self.error: Optional[BaseException] = None

    def batch_size(self) -> int:
        return self._batch_size

    def next_pointers(self, names: Sequence[str]) -> Optional[list[int]]:
        """Device pointers of the next batch, in the order of ``names``; None when done."""
        if self.error is not None:
            return None
        try:
            batch = next(self._batches)
            missing = [n for n in names if n not in batch]
            if missing:
                raise EngineBuildError(f"TensorRT asks for calibration inputs {missing}, "
                                       f"the data has {sorted(batch)}")
            pointers = [int(self._upload(n, batch[n])) for n in names]
        except StopIteration:
            log.info("calibration: %d batches used", self.batches_given)
            return None
        except Exception as e:  # kept and raised by the builder after TensorRT returns
            log.error("calibration data failed: %s", e)
            self.error = e
            return None
        self.batches_given += 1
        if self.batches_given % 100 == 0:
            log.info("calibration: %d batches", self.batches_given)
        return pointers

    def read_table(self) -> Optional[bytes]:
        """The existing calibration table (reuse), or None to calibrate from data."""
        if self.reuse_table and self.table.is_file():
            data = self.table.read_bytes()
            if data:
                log.info("calibration table %s reused (no calibration run)", self.table.name)
                self.table_reused = True
                return data
        return None

    def write_table(self, cache: bytes) -> None:
        self.table.write_bytes(bytes(cache))
        log.info("calibration table written: %s (%d bytes)", self.table, len(bytes(cache)))


def find_feature_files(cache: Path | str, audio: Mapping, video: Mapping) -> list[Path]:
    """The feature-cache npz files made with this preprocessing.

    ``cache``: a training feature cache root holding ``features-<hash>/`` directories
    (one npz per clip, ``params.json``), one such directory, or a directory of
    ``features-*.npz`` files. Directories whose ``params.json`` records other audio /
    video parameters than the bundle's (``audio``, ``video``: manifest preprocessing
    dicts) are skipped; of several matching (e.g. other hops), the newest is used.
    """
    cache = Path(cache)
    if not cache.is_dir():
        raise EngineBuildError(f"feature cache {cache} is not a directory")
    dirs = [cache] if (cache / "params.json").is_file() else \
        [d for d in cache.glob("features-*") if (d / "params.json").is_file()]
    matching = []
    for d in dirs:
        try:
            params = json.loads((d / "params.json").read_text())
        except (OSError, json.JSONDecodeError) as e:
            log.warning("feature cache %s: unreadable params.json (%s): skipped", d, e)
            continue
        if params.get("audio") == dict(audio) and params.get("video") == dict(video):
            matching.append(d)
        else:
            log.info("feature cache %s was made with other preprocessing: skipped", d)
    if matching:
        newest = max(matching, key=lambda d: d.stat().st_mtime)
        files = sorted(newest.glob("*.npz"))
        if files:
            log.info("calibration windows from %s (%d files)", newest, len(files))
            return files
    files = sorted(cache.glob("features-*.npz"), key=lambda p: p.stat().st_mtime)
    if files:  # single-file caches record no parameters: shapes are checked when batching
        log.info("calibration windows from %s", files[-1])
        return [files[-1]]
    raise EngineBuildError(f"no feature cache made with the bundle's preprocessing in {cache} "
                           "(run training on this preprocessing first, or give --calib-npz)")


def load_feature_cache(paths: Sequence[Path | str]) -> dict[str, np.ndarray]:
    """FeatureSet fields of feature-cache npz files (whole sets or per-clip), concatenated."""
    parts: dict[str, list] = {}
    for p in paths:
        try:
            with np.load(p) as z:
                f = _canonical_features({k: z[k] for k in z.files
                                         if k in ("audio", "video", "spectrograms", "faces",
                                                  "has_audio", "has_face", "groups")})
        except (OSError, ValueError, EOFError) as e:
            raise EngineBuildError(f"cannot read feature cache {p}: {e}") from None
        except EngineBuildError as e:
            raise EngineBuildError(f"{p}: {e}") from None
        for k, v in f.items():
            parts.setdefault(k, []).append(v)
    if not parts:
        raise EngineBuildError("no feature cache files given")
    n_files = len(parts["has_audio"])
    if len(parts.get("groups", [])) != n_files:
        parts.pop("groups", None)
        log.info("the feature cache records no actor / session groups: calibration draws on "
                 "every clip (it uses no labels, only activation ranges)")
    try:
        return {k: np.concatenate(v) for k, v in parts.items()}
    except ValueError as e:
        raise EngineBuildError(f"feature cache files disagree in shape: {e}") from None


# --- TensorRT (needs TensorRT 10, pycuda and a GPU) ---------------------------------------

def _trt_logger(trt):
    """A TensorRT logger that forwards to Python logging."""
    class _Forward(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)

        def log(self, severity, msg):
            level = trt_log_level(getattr(severity, "name", str(severity)).split(".")[-1])
            if level is not None:
                log.log(level, "TensorRT: %s", msg)

    return _Forward()


def _trt_calibrator(trt, feed: CalibrationFeed):
    """An ``IInt8EntropyCalibrator2`` delegating to ``feed``."""
    class _EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)

        def get_batch_size(self):
            return feed.batch_size()

        def get_batch(self, names):
            return feed.next_pointers(list(names))

        def read_calibration_cache(self):
            return feed.read_table()

        def write_calibration_cache(self, cache):
            feed.write_table(bytes(cache))

    return _EntropyCalibrator()


class _DeviceStaging:
    """One device buffer per calibration input, reused for every batch (pycuda)."""

    def __init__(self):
        import pycuda.driver as cuda

        self._cuda = cuda
        self._bufs: dict[str, tuple[object, int]] = {}

    def upload(self, name: str, array: np.ndarray) -> int:
        buf = self._bufs.get(name)
        if buf is None or buf[1] != array.nbytes:
            if buf is not None:
                buf[0].free()
            buf = (self._cuda.mem_alloc(array.nbytes), array.nbytes)
            self._bufs[name] = buf
        self._cuda.memcpy_htod(buf[0], np.ascontiguousarray(array))
        return int(buf[0])

    def free(self) -> None:
        for buf, _ in self._bufs.values():
            buf.free()
        self._bufs.clear()


def _log_tensors(what: str, tensors: Iterable[tuple[str, Sequence[int], str, bool]]) -> None:
    for name, shape, dtype, is_input in tensors:
        log.info("%s %s %r shape %s dtype %s", what, "input" if is_input else "output",
                 name, list(shape), dtype)


def build_engine(onnx_path: Path, engine_path: Path, spec: ModelSpec, *, precision: str = "fp16",
                 workspace_mb: int = DEFAULT_WORKSPACE_MB,
                 calibration: Optional[Iterable[dict[str, np.ndarray]]] = None,
                 calib_table: Optional[Path] = None, recalibrate: bool = False) -> dict:
    """ONNX -> ``engine_path``; returns its manifest engine record.

    ``calibration`` (batches from ``calibration_batches``) and ``calib_table`` are for
    ``precision="int8"``; an existing table is reused unless ``recalibrate``.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    if precision == "int8" and calib_table is None:
        raise ValueError("int8 needs calib_table (where the calibration table lives)")
    runtime, reason = probe_tensorrt()
    if runtime is None:
        raise EngineBuildError(f"cannot build TensorRT engines here: {reason}")
    require_tensorrt_10(runtime.version)
    import pycuda.driver as cuda
    import tensorrt as trt

    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    ctx = cuda.Device(0).retain_primary_context()
    ctx.push()
    staging = _DeviceStaging()
    feed: Optional[CalibrationFeed] = None
    try:
        logger = _trt_logger(trt)
        builder = trt.Builder(logger)
        network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(onnx_path.read_bytes(), str(onnx_path)):
            errors = [describe_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
            for e in errors:
                log.error("%s: ONNX parser: %s", onnx_path.name, e)
            raise EngineBuildError(f"TensorRT cannot parse {onnx_path.name}: {len(errors)} "
                                   f"error(s), first: {errors[0] if errors else 'unknown'}")
        tensors = ([network.get_input(i) for i in range(network.num_inputs)],
                   [network.get_output(i) for i in range(network.num_outputs)])
        _log_tensors(f"{onnx_path.name} network",
                     [(t.name, tuple(t.shape), t.dtype.name, k == 0)
                      for k, group in enumerate(tensors) for t in group])
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
        if precision in ("fp16", "int8"):
            if not builder.platform_has_fast_fp16:
                log.warning("%s: this GPU has no fast FP16; building FP16 anyway",
                            runtime.gpu_name)
            config.set_flag(trt.BuilderFlag.FP16)
        if precision == "int8":
            if not builder.platform_has_fast_int8:
                log.warning("%s: this GPU has no fast INT8; building INT8 anyway",
                            runtime.gpu_name)
            config.set_flag(trt.BuilderFlag.INT8)
            shapes = {t.name: tuple(t.shape) for t in tensors[0]}
            feed = CalibrationFeed(calibration or (), calib_table, staging.upload,
                                   batch_size=int(next(iter(shapes.values()))[0]),
                                   reuse_table=not recalibrate)
            calibrator = _trt_calibrator(trt, feed)  # referenced here until the build ends
            config.int8_calibrator = calibrator
        log.info("building %s engine for %s on %s (TensorRT %s)", precision, onnx_path.name,
                 runtime.gpu_name, runtime.version)
        plan = builder.build_serialized_network(network, config)
        if feed is not None and feed.error is not None:
            raise EngineBuildError(f"INT8 calibration of {onnx_path.name} failed: {feed.error}")
        if plan is None:
            raise EngineBuildError(f"TensorRT failed to build {onnx_path.name} (its errors are "
                                   "logged above)")
        trt_runtime = trt.Runtime(logger)  # must outlive the engine
        engine = trt_runtime.deserialize_cuda_engine(plan)
        if engine is None:
            raise EngineBuildError(f"the engine built from {onnx_path.name} does not deserialize")
        io = engine_io(engine)
        _log_tensors(f"{engine_path.name} engine",
                     [(t.name, t.shape, t.dtype, t.is_input) for t in io])
        problems = engine_io_mismatches(spec, io)
        if problems:
            raise EngineBuildError(f"engine of {onnx_path.name} does not match the manifest: "
                                   + "; ".join(problems))
        tmp = engine_path.with_suffix(engine_path.suffix + ".tmp")
        tmp.write_bytes(bytes(plan))
        os.replace(tmp, engine_path)
        del engine
    finally:
        staging.free()
        ctx.pop()
        ctx.detach()
    calib = None
    if feed is not None:
        calib = {"table": Path(calib_table).name, "batches": feed.batches_given,
                 "reused_table": feed.table_reused}
    return engine_record(file=engine_path.name, sha256=sha256_file(engine_path),
                         tensorrt_version=runtime.version, gpu_name=runtime.gpu_name,
                         compute_capability=runtime.compute_capability, precision=precision,
                         workspace_mb=workspace_mb, calibration=calib)


def _input_shapes(spec: ModelSpec) -> dict[str, list[int]]:
    return {t.name: list(t.shape) for t in spec.inputs}


def build_engines(bundle_dir: Path | str, precision: str = "fp16", *,
                  roles: Sequence[str] = ROLES, workspace_mb: int = DEFAULT_WORKSPACE_MB,
                  calib_npz: Sequence[Path | str] = (), calib_windows: int = DEFAULT_CALIB_WINDOWS,
                  recalibrate: bool = False) -> dict[str, dict]:
    """Build the engines of ``roles`` and record each in the manifest; role -> record.

    The manifest is rewritten after every engine, so a later failure keeps the earlier
    ones. INT8 uses ``calib_npz`` feature caches unless every table can be reused.
    """
    bundle_dir = Path(bundle_dir)
    m = load_manifest(bundle_dir)  # refuse a broken bundle before spending GPU time
    runtime, reason = probe_tensorrt()
    if runtime is None:
        raise EngineBuildError(f"cannot build TensorRT engines here: {reason}")
    require_tensorrt_10(runtime.version)
    unknown = [r for r in roles if r not in m.models]
    if unknown:
        raise EngineBuildError(f"roles {unknown} are not networks of the bundle "
                               f"{sorted(m.models)}")
    tables = {r: bundle_dir / calibration_table_name(r, m.models[r].sha256) for r in roles}
    need_data = precision == "int8" and any(recalibrate or not tables[r].is_file() for r in roles)
    windows = None
    if need_data:
        if not calib_npz:
            raise EngineBuildError(
                "int8 needs calibration data: give --calib-cache DIR or --calib-npz FILE "
                f"(no reusable tables {[t.name for r, t in tables.items() if not t.is_file()]})")
        windows = calibration_windows(load_feature_cache(calib_npz), calib_windows,
                                      split_exclusions(m.training))
    data = json.loads((bundle_dir / MANIFEST_NAME).read_text())
    records = {}
    for role in roles:
        spec = m.models[role]
        batches = None
        if windows is not None and (recalibrate or not tables[role].is_file()):
            if role == "fusion":
                nets = [OnnxRuntimeBackend(bundle_dir / m.models[r].file)
                        for r in ("audio", "video")]
                try:
                    arrays = fusion_calibration_inputs(m.models, *nets, windows["fusion"]["audio"],
                                                       windows["fusion"]["video"])
                finally:
                    for net in nets:
                        net.close()
            else:
                arrays = network_inputs(spec, windows[role][role])
            log.info("%s: %d calibration windows", role, len(next(iter(arrays.values()))))
            batches = list(calibration_batches(arrays, _input_shapes(spec)))
        rec = build_engine(bundle_dir / spec.file, bundle_dir / engine_filename(role, precision),
                           spec, precision=precision, workspace_mb=workspace_mb,
                           calibration=batches,
                           calib_table=tables[role] if precision == "int8" else None,
                           recalibrate=recalibrate)
        record_engine(data, role, rec)
        save_manifest_data(bundle_dir, data)
        records[role] = rec
    return records


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Build TensorRT engines for a model bundle "
                                 "(TensorRT 10, pycuda, NVIDIA GPU)")
    ap.add_argument("--bundle", type=Path, required=True, help="model bundle directory")
    ap.add_argument("--precision", choices=PRECISIONS, default="fp16")
    ap.add_argument("--roles", nargs="+", choices=ROLES, default=list(ROLES),
                    help="networks to build (default: all)")
    ap.add_argument("--workspace-mb", type=int, default=DEFAULT_WORKSPACE_MB,
                    help="builder workspace memory pool limit in MiB")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--calib-cache", type=Path, metavar="DIR",
                     help="int8: training feature cache (root or features-<hash> directory); "
                          "the one made with the bundle's preprocessing is used")
    src.add_argument("--calib-npz", type=Path, nargs="+", metavar="FILE", default=[],
                     help="int8: feature cache npz file(s) to calibrate on")
    ap.add_argument("--calib-windows", type=int, default=DEFAULT_CALIB_WINDOWS,
                    help="int8: at most this many windows per network")
    ap.add_argument("--recalibrate", action="store_true",
                    help="int8: calibrate again even where a calibration table exists")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    if args.workspace_mb <= 0 or args.calib_windows <= 0:
        ap.error("--workspace-mb and --calib-windows must be positive")
    try:
        npz = list(args.calib_npz)
        if args.calib_cache is not None and args.precision == "int8":
            m = load_manifest(args.bundle, verify_files=False)
            npz = find_feature_files(args.calib_cache, m.audio.to_dict(), m.video.to_dict())
        records = build_engines(args.bundle, args.precision, roles=args.roles,
                                workspace_mb=args.workspace_mb, calib_npz=npz,
                                calib_windows=args.calib_windows, recalibrate=args.recalibrate)
    except (EngineBuildError, BundleError) as e:
        print(f"engine build failed: {e}", file=sys.stderr)
        return 1
    models = json.loads((args.bundle / MANIFEST_NAME).read_text())["models"]
    for role, rec in records.items():
        table = rec.get("calibration", {}).get("table")
        print(f"{role}: {args.bundle / rec['file']} ({rec['precision']}, TensorRT "
              f"{rec['tensorrt_version']}, {rec['gpu']} compute {rec['compute_capability']}, "
              f"sha256 {rec['sha256'][:12]})")
        onnx = args.bundle / models[role]["file"]
        equivalent = trtexec_command(onnx, args.bundle / rec["file"], rec["precision"],
                                     workspace_mb=args.workspace_mb,
                                     calib_table=args.bundle / table if table else None)
        print("  equivalent: " + equivalent)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
