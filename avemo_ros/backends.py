"""Inference backends behind one interface: ONNX Runtime (CPU default) and TensorRT.

``auto`` picks TensorRT when the bundle has an engine for the network and TensorRT with
a GPU is importable, else ONNX Runtime. Nothing here imports torch.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Protocol

import numpy as np

from .manifest import BundleError, ModelSpec, sha256_file

log = logging.getLogger(__name__)
BACKENDS = ("auto", "onnxruntime", "tensorrt")


class InferenceBackend(Protocol):
    """Runs one network: named float32 inputs -> named outputs."""

    name: str

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...


class OnnxRuntimeBackend:
    """ONNX Runtime session (CPU, or CUDA EP where present and asked for)."""

    name = "onnxruntime"

    def __init__(self, path: Path, *, threads: int = 0, use_cuda: bool = False):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads > 0:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if use_cuda and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self._session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types
            raise BundleError(f"ONNX Runtime cannot load {path}: {e}") from None
        self._outputs = [o.name for o in self._session.get_outputs()]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self._outputs, self._session.run(self._outputs, inputs)))

    def close(self) -> None:
        self._session = None


def tensorrt_available() -> Optional[str]:
    """None when TensorRT + pycuda + a GPU are usable, else the reason they are not."""
    try:
        import tensorrt  # noqa: F401
        import pycuda.driver as cuda

        cuda.init()
        if cuda.Device.count() == 0:
            return "no CUDA GPU"
    except Exception as e:  # ImportError, or a CUDA driver error on GPU-less machines
        return f"TensorRT/pycuda unusable: {e}"
    return None


class TensorRTBackend:
    """A serialized TensorRT 10 engine run with pycuda buffers (static shapes).

    Refuses an engine built by another TensorRT version or for another GPU, with the
    versions named, instead of failing deep inside deserialization.
    """

    name = "tensorrt"

    def __init__(self, path: Path, build_info: dict):
        import pycuda.driver as cuda
        import tensorrt as trt

        cuda.init()
        self._cuda = cuda
        self._ctx = cuda.Device(0).retain_primary_context()
        self._ctx.push()
        try:
            gpu = cuda.Device(0).name()
            if build_info.get("tensorrt_version") != trt.__version__:
                raise BundleError(f"engine {path.name} was built with TensorRT "
                                  f"{build_info.get('tensorrt_version')}, this is {trt.__version__}: "
                                  "rebuild it (training/build_engines)")
            if build_info.get("gpu") != gpu:
                raise BundleError(f"engine {path.name} was built for {build_info.get('gpu')}, "
                                  f"this GPU is {gpu}: rebuild it on this machine")
            logger = trt.Logger(trt.Logger.WARNING)
            self._engine = trt.Runtime(logger).deserialize_cuda_engine(path.read_bytes())
            if self._engine is None:
                raise BundleError(f"TensorRT could not deserialize {path}")
            self._context = self._engine.create_execution_context()
            self._stream = cuda.Stream()
            self._host, self._device, self._inputs, self._outputs = {}, {}, [], []
            for i in range(self._engine.num_io_tensors):
                name = self._engine.get_tensor_name(i)
                shape = tuple(self._engine.get_tensor_shape(name))
                dtype = trt.nptype(self._engine.get_tensor_dtype(name))
                self._host[name] = cuda.pagelocked_empty(shape, dtype)
                self._device[name] = cuda.mem_alloc(self._host[name].nbytes)
                self._context.set_tensor_address(name, int(self._device[name]))
                is_input = self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
                (self._inputs if is_input else self._outputs).append(name)
        finally:
            self._ctx.pop()

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cuda = self._cuda
        self._ctx.push()
        try:
            for name in self._inputs:
                np.copyto(self._host[name], inputs[name])
                cuda.memcpy_htod_async(self._device[name], self._host[name], self._stream)
            if not self._context.execute_async_v3(self._stream.handle):
                raise RuntimeError("TensorRT execution failed")
            for name in self._outputs:
                cuda.memcpy_dtoh_async(self._host[name], self._device[name], self._stream)
            self._stream.synchronize()
            return {name: self._host[name].copy() for name in self._outputs}
        finally:
            self._ctx.pop()

    def close(self) -> None:
        for buf in self._device.values():
            buf.free()
        self._device.clear()
        self._context = None
        self._engine = None
        self._ctx.detach()


def open_backend(spec: ModelSpec, bundle_dir: Path, backend: str = "auto",
                 *, threads: int = 0) -> InferenceBackend:
    """The backend ``backend`` for one network of a bundle."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    engine = spec.engine
    if backend in ("auto", "tensorrt"):
        reason = "the bundle has no TensorRT engine for it" if not engine else tensorrt_available()
        if reason is None:
            path = Path(bundle_dir) / engine["file"]
            if sha256_file(path) != engine.get("sha256"):
                raise BundleError(f"engine {path.name} checksum does not match the manifest")
            return TensorRTBackend(path, engine)
        if backend == "tensorrt":
            raise BundleError(f"tensorrt backend requested for {spec.file} but {reason}")
        log.debug("auto backend: ONNX Runtime for %s (%s)", spec.file, reason)
    return OnnxRuntimeBackend(Path(bundle_dir) / spec.file, threads=threads)
