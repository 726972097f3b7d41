"""Inference backends behind one interface: ONNX Runtime and TensorRT 10.

``auto`` picks TensorRT for a network only when the bundle has an engine for it, the
engine file matches its manifest checksum, ``tensorrt`` and ``pycuda`` import, a CUDA GPU
is present, and the engine was built by this TensorRT version for this GPU; otherwise it
uses ONNX Runtime (CUDA execution provider when available, else CPU) and logs one line
saying why. ``tensorrt`` refuses instead of falling back. Nothing here imports torch.

The decisions are pure functions (``check_engine_compatibility``, ``check_engine_file``,
``engine_io_mismatches``, ``choose_backend``) so they are tested without a GPU.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol, Sequence, Union

import numpy as np

from .manifest import BundleError, ModelSpec, sha256_file

log = logging.getLogger(__name__)
BACKENDS = ("auto", "onnxruntime", "tensorrt")
#: How the engine builder is invoked; named in refusals so the fix is one command away.
REBUILD_HINT = "rebuild it on this machine: python -m training.engines --bundle <bundle dir>"


class EngineIncompatible(BundleError):
    """A TensorRT engine that this runtime must not load (version, GPU, checksum, I/O)."""


class InferenceBackend(Protocol):
    """Runs one network: named float32 inputs -> named outputs."""

    name: str

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...


# --- ONNX Runtime ----------------------------------------------------------------------

def onnxruntime_providers(available: Sequence[str], use_cuda: bool = True) -> list[str]:
    """Execution providers to ask for: CUDA first when wanted and available, CPU always."""
    providers = ["CPUExecutionProvider"]
    if use_cuda and "CUDAExecutionProvider" in available:
        providers.insert(0, "CUDAExecutionProvider")
    return providers


class OnnxRuntimeBackend:
    """ONNX Runtime session: CUDA execution provider when available, else CPU.

    ``threads`` > 0 sets the intra-op thread count (0: the library default).
    """

    name = "onnxruntime"

    def __init__(self, path: Path, *, threads: int = 0, use_cuda: bool = True):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads > 0:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        providers = onnxruntime_providers(ort.get_available_providers(), use_cuda)
        try:
            self._session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types
            raise BundleError(f"ONNX Runtime cannot load {path}: {e}") from None
        #: The providers the session really uses (ORT drops CUDA when its libraries fail).
        self.providers = list(self._session.get_providers())
        self.device = "cuda" if "CUDAExecutionProvider" in self.providers else "cpu"
        self._outputs = [o.name for o in self._session.get_outputs()]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self._outputs, self._session.run(self._outputs, inputs)))

    def close(self) -> None:
        self._session = None


# --- what the TensorRT runtime on this machine is ---------------------------------------

@dataclass(frozen=True)
class TensorRTRuntime:
    """The TensorRT library and GPU this process would run engines with."""

    version: str
    gpu_name: str
    compute_capability: str  # "major.minor", e.g. "8.7"


def format_compute_capability(cc: Union[str, Sequence[int], None]) -> str:
    """(8, 7) or "8.7" -> "8.7"; None -> ""."""
    if cc is None:
        return ""
    if isinstance(cc, str):
        return cc.strip()
    return ".".join(str(int(x)) for x in cc)


@functools.lru_cache(maxsize=1)
def probe_tensorrt() -> tuple[Optional[TensorRTRuntime], Optional[str]]:
    """(runtime, None) when TensorRT + pycuda + a CUDA GPU are usable, else (None, reason)."""
    try:
        import tensorrt as trt
    except Exception as e:  # ImportError, or a broken library load
        return None, f"TensorRT is not importable ({e})"
    try:
        import pycuda.driver as cuda

        cuda.init()
        if cuda.Device.count() == 0:
            return None, "no CUDA GPU is present"
        dev = cuda.Device(0)
        return TensorRTRuntime(trt.__version__, dev.name(),
                               format_compute_capability(dev.compute_capability())), None
    except ImportError as e:
        return None, f"pycuda is not importable ({e})"
    except Exception as e:  # pycuda.driver.Error on machines without a driver / GPU
        return None, f"no usable CUDA GPU ({e})"


def tensorrt_unavailable_reason() -> Optional[str]:
    """None when TensorRT engines can run here, else why not."""
    return probe_tensorrt()[1]


def tensorrt_available() -> bool:
    """True when TensorRT, pycuda and a CUDA GPU are usable in this process."""
    return tensorrt_unavailable_reason() is None


# --- engine checks (pure) ---------------------------------------------------------------

def check_engine_compatibility(engine_info: dict, runtime_trt_version: str, gpu_name: str,
                               compute_capability: Union[str, Sequence[int]]) -> None:
    """Refuse an engine built by another TensorRT version or for another GPU.

    TensorRT plans are tied to the exact library version and GPU model that built them.
    Raises EngineIncompatible naming what the engine was built with and what this
    runtime is. An engine record without a compute capability is matched by GPU name.
    """
    file = engine_info.get("file", "<engine>")
    built_trt = str(engine_info.get("tensorrt_version") or "")
    built_gpu = str(engine_info.get("gpu") or "")
    built_cc = format_compute_capability(engine_info.get("compute_capability"))
    here_cc = format_compute_capability(compute_capability)
    missing = [k for k, v in (("tensorrt_version", built_trt), ("gpu", built_gpu)) if not v]
    if missing:
        raise EngineIncompatible(f"engine {file}: the manifest does not record its {missing}: "
                                 f"{REBUILD_HINT}")
    built = f"TensorRT {built_trt} for {built_gpu}"
    built += f" (compute {built_cc})" if built_cc else ""
    here = f"TensorRT {runtime_trt_version} on {gpu_name} (compute {here_cc})"
    if built_trt != str(runtime_trt_version):
        raise EngineIncompatible(f"engine {file} was built with {built}; this runtime is {here}: "
                                 f"TensorRT version differs, {REBUILD_HINT}")
    if built_gpu.strip().casefold() != str(gpu_name).strip().casefold() or (
            built_cc and built_cc != here_cc):
        raise EngineIncompatible(f"engine {file} was built with {built}; this runtime is {here}: "
                                 f"GPU differs, {REBUILD_HINT}")


def check_engine_file(path: Path, engine_info: dict) -> None:
    """Refuse a missing engine file or one whose SHA-256 differs from the manifest's."""
    path = Path(path)
    if not path.is_file():
        raise EngineIncompatible(f"engine file {path} named in the manifest is missing")
    digest = sha256_file(path)
    want = str(engine_info.get("sha256") or "")
    if digest != want:
        raise EngineIncompatible(f"engine {path.name} checksum {digest[:12]} does not match the "
                                 f"manifest's {want[:12] or '(none)'}: file changed or corrupt")


@dataclass(frozen=True)
class TensorIO:
    """One I/O tensor of a built engine."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # NumPy dtype name, e.g. "float32"
    is_input: bool


def engine_io_mismatches(spec: ModelSpec, io: Sequence[TensorIO]) -> list[str]:
    """Differences between an engine's I/O tensors and the manifest's; empty when equal."""
    problems = []
    for kind, want, got in (("input", spec.inputs, [t for t in io if t.is_input]),
                            ("output", spec.outputs, [t for t in io if not t.is_input])):
        by_name = {t.name: t for t in got}
        for t in want:
            g = by_name.pop(t.name, None)
            if g is None:
                problems.append(f"{kind} {t.name!r} is missing from the engine")
                continue
            if list(g.shape) != list(t.shape):
                problems.append(f"{kind} {t.name!r} has shape {list(g.shape)}, "
                                f"manifest {list(t.shape)}")
            if g.dtype != t.dtype:
                problems.append(f"{kind} {t.name!r} has dtype {g.dtype}, manifest {t.dtype}")
        problems += [f"engine has an extra {kind} {n!r}" for n in by_name]
    return problems


@dataclass(frozen=True)
class BackendChoice:
    """Which backend to open for one network, and why."""

    backend: str  # "tensorrt" | "onnxruntime"
    reason: str  # why not TensorRT ("" when TensorRT was chosen)
    engine_path: Optional[Path] = None


def choose_backend(requested: str, spec: ModelSpec, bundle_dir: Path,
                   runtime: Optional[TensorRTRuntime], unavailable: Optional[str] = None
                   ) -> BackendChoice:
    """Decide the backend of one network from the manifest, the files and ``probe_tensorrt()``.

    ``requested`` ``tensorrt`` raises BundleError (EngineIncompatible for a bad engine)
    where ``auto`` falls back to ONNX Runtime with the reason.
    """
    if requested not in BACKENDS:
        raise ValueError(f"unknown backend {requested!r}; choose one of {BACKENDS}")
    if requested == "onnxruntime":
        return BackendChoice("onnxruntime", "onnxruntime requested")
    engine = spec.engine
    try:
        if not engine or not engine.get("file"):
            raise BundleError("the bundle has no TensorRT engine for it")
        path = Path(bundle_dir) / engine["file"]
        if runtime is None:
            raise BundleError(unavailable or "TensorRT is not usable here")
        check_engine_file(path, engine)
        check_engine_compatibility(engine, runtime.version, runtime.gpu_name,
                                   runtime.compute_capability)
    except BundleError as e:
        if requested == "tensorrt":
            raise type(e)(f"tensorrt backend requested for {spec.file} but {e}") from None
        return BackendChoice("onnxruntime", str(e))
    return BackendChoice("tensorrt", "", path)


# --- TensorRT ---------------------------------------------------------------------------

class TensorRTBackend:
    """A serialized TensorRT 10 engine run with pycuda buffers (static shapes).

    Refuses, before deserializing, an engine whose file does not match the manifest
    checksum or that was built by another TensorRT version or for another GPU (both named),
    and after deserializing one whose I/O tensors differ from ``spec``.
    """

    name = "tensorrt"

    def __init__(self, path: Path, engine_info: dict, spec: Optional[ModelSpec] = None):
        runtime, reason = probe_tensorrt()
        if runtime is None:
            raise BundleError(f"cannot run engine {Path(path).name}: {reason}")
        check_engine_file(path, engine_info)
        check_engine_compatibility(engine_info, runtime.version, runtime.gpu_name,
                                   runtime.compute_capability)
        import pycuda.driver as cuda
        import tensorrt as trt

        self._cuda = cuda
        self._device, self._engine, self._context = {}, None, None
        self._ctx = cuda.Device(0).retain_primary_context()
        self._ctx.push()
        try:
            # The logger and runtime must outlive the engine: keep references.
            self._logger = trt.Logger(trt.Logger.WARNING)
            self._runtime = trt.Runtime(self._logger)
            self._engine = self._runtime.deserialize_cuda_engine(Path(path).read_bytes())
            if self._engine is None:
                raise EngineIncompatible(f"TensorRT could not deserialize {path} (see its log)")
            io = engine_io(self._engine)
            if spec is not None:
                problems = engine_io_mismatches(spec, io)
                if problems:
                    raise EngineIncompatible(f"engine {Path(path).name} does not match the "
                                             f"manifest: {'; '.join(problems)}")
            self._context = self._engine.create_execution_context()
            if self._context is None:
                raise BundleError(f"TensorRT could not create an execution context for {path}")
            self._stream = cuda.Stream()
            self._host, self._inputs, self._outputs = {}, [], []
            for t in io:
                self._host[t.name] = cuda.pagelocked_empty(t.shape, np.dtype(t.dtype))
                self._device[t.name] = cuda.mem_alloc(self._host[t.name].nbytes)
                self._context.set_tensor_address(t.name, int(self._device[t.name]))
                (self._inputs if t.is_input else self._outputs).append(t.name)
        except Exception:
            self._free()
            self._ctx.pop()
            self._ctx.detach()
            self._ctx = None
            raise
        self._ctx.pop()

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cuda = self._cuda
        for name in self._inputs:
            if name not in inputs:
                raise ValueError(f"TensorRT engine input {name!r} not given")
            if np.shape(inputs[name]) != self._host[name].shape:
                raise ValueError(f"input {name!r} has shape {np.shape(inputs[name])}, "
                                 f"the engine takes {self._host[name].shape}")
        self._ctx.push()
        try:
            for name in self._inputs:
                np.copyto(self._host[name], inputs[name])
                cuda.memcpy_htod_async(self._device[name], self._host[name], self._stream)
            if not self._context.execute_async_v3(self._stream.handle):
                raise RuntimeError("TensorRT execution failed (see its log)")
            for name in self._outputs:
                cuda.memcpy_dtoh_async(self._host[name], self._device[name], self._stream)
            self._stream.synchronize()
            return {name: self._host[name].copy() for name in self._outputs}
        finally:
            self._ctx.pop()

    def _free(self) -> None:
        for buf in self._device.values():
            buf.free()
        self._device.clear()
        self._context = None
        self._engine = None

    def close(self) -> None:
        if self._ctx is None:
            return
        self._ctx.push()
        try:
            self._free()
        finally:
            self._ctx.pop()
            self._ctx.detach()
            self._ctx = None


def engine_io(engine) -> list[TensorIO]:
    """The I/O tensors of a deserialized TensorRT 10 ``ICudaEngine``."""
    import tensorrt as trt

    out = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        out.append(TensorIO(name, tuple(int(d) for d in engine.get_tensor_shape(name)),
                            np.dtype(trt.nptype(engine.get_tensor_dtype(name))).name,
                            engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT))
    return out


def open_backend(spec: ModelSpec, bundle_dir: Path, backend: str = "auto",
                 *, threads: int = 0) -> InferenceBackend:
    """The backend ``backend`` for one network of a bundle (see the module docstring)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    runtime, unavailable = probe_tensorrt() if backend != "onnxruntime" else (None, None)
    choice = choose_backend(backend, spec, Path(bundle_dir), runtime, unavailable)
    if choice.backend == "tensorrt":
        net = TensorRTBackend(choice.engine_path, spec.engine, spec)
        log.info("%s: TensorRT engine %s (%s)", spec.file, choice.engine_path.name,
                 spec.engine.get("precision", "?"))
        return net
    net = OnnxRuntimeBackend(Path(bundle_dir) / spec.file, threads=threads)
    if backend == "auto":
        # Engines that exist but cannot be used deserve a warning; no engines is normal.
        level = logging.WARNING if spec.engine else logging.INFO
        log.log(level, "auto backend: ONNX Runtime (%s) for %s because %s",
                net.device, spec.file, choice.reason)
    return net
