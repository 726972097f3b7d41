"""Building engines with TensorRT 10 (needs TensorRT, pycuda and an NVIDIA GPU): parse,
calibrate, build, check against the manifest, record."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from avemo_ros.backends import OnnxRuntimeBackend, engine_io, engine_io_mismatches, probe_tensorrt
from avemo_ros.manifest import MANIFEST_NAME, ROLES, ModelSpec, load_manifest, sha256_file

from .calibration import (CalibrationFeed, calibration_batches, calibration_windows,
                          fusion_calibration_inputs, load_feature_cache, network_inputs,
                          split_exclusions)
from .records import (DEFAULT_CALIB_WINDOWS, DEFAULT_WORKSPACE_MB, PRECISIONS, EngineBuildError,
                      calibration_table_name, describe_parser_error, engine_filename,
                      engine_record, record_engine, require_tensorrt_10, save_manifest_data,
                      trt_log_level)

log = logging.getLogger("training.engines")
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
