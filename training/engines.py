"""Build TensorRT engines (TensorRT 10 API) for every network of a model bundle.

    python -m training.engines --bundle data/models/synthetic [--precision fp16]

Logs every ONNX parser error and each I/O tensor, checks the build result before writing
the plan, records TensorRT version, GPU and precision in the manifest, and prints the
equivalent ``trtexec`` command. Needs TensorRT, pycuda and an NVIDIA GPU.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from avemo_ros.manifest import MANIFEST_NAME, load_manifest, sha256_file

log = logging.getLogger("training.engines")


class EngineBuildError(RuntimeError):
    """TensorRT could not parse or build a network."""


def build_engine(onnx_path: Path, plan_path: Path, precision: str = "fp16",
                 workspace_mb: int = 1024) -> dict:
    """ONNX -> serialized engine file; returns the build info for the manifest."""
    import pycuda.driver as cuda
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        for e in errors:
            log.error("%s: ONNX parser: %s", onnx_path.name, e)
        raise EngineBuildError(f"{onnx_path.name}: {len(errors)} ONNX parser error(s): {errors[:3]}")
    for i in range(network.num_inputs):
        t = network.get_input(i)
        log.info("%s input %s %s %s", onnx_path.name, t.name, tuple(t.shape), t.dtype)
    for i in range(network.num_outputs):
        t = network.get_output(i)
        log.info("%s output %s %s %s", onnx_path.name, t.name, tuple(t.shape), t.dtype)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision != "fp32":
        raise ValueError(f"precision {precision!r} not supported here (fp16, fp32)")
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise EngineBuildError(f"TensorRT failed to build {onnx_path.name} (see its log above)")
    plan_path.write_bytes(bytes(plan))
    cuda.init()
    gpu = cuda.Device(0).name()
    flag = " --fp16" if precision == "fp16" else ""
    log.info("equivalent: trtexec --onnx=%s --saveEngine=%s%s", onnx_path, plan_path, flag)
    return {"file": plan_path.name, "sha256": sha256_file(plan_path),
            "tensorrt_version": trt.__version__, "gpu": gpu, "precision": precision}


def build_engines(bundle_dir: Path | str, precision: str = "fp16") -> None:
    """Build an engine for each network of the bundle and record it in the manifest."""
    bundle_dir = Path(bundle_dir)
    load_manifest(bundle_dir)  # refuse a broken bundle before spending GPU time
    path = bundle_dir / MANIFEST_NAME
    data = json.loads(path.read_text())
    for role, spec in data["models"].items():
        onnx_path = bundle_dir / spec["file"]
        spec["engine"] = build_engine(onnx_path, onnx_path.with_suffix(f".{precision}.plan"),
                                      precision)
    path.write_text(json.dumps(data, indent=2) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Build TensorRT engines for a model bundle")
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--precision", choices=("fp16", "fp32"), default="fp16")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    build_engines(args.bundle, args.precision)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
