"""Names, commands and manifest records of engines (pure): engine and calibration-table
file names, the equivalent trtexec command, the manifest's engine record, TensorRT checks."""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import shlex
from pathlib import Path
from typing import Optional

from avemo_ros.manifest import MANIFEST_NAME, BundleError


PRECISIONS = ("fp16", "int8", "fp32")
DEFAULT_WORKSPACE_MB = 1024
DEFAULT_CALIB_WINDOWS = 512


class EngineBuildError(RuntimeError):
    """TensorRT could not parse, calibrate or build a network, or the result is wrong."""


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
