"""``python -m training.engines``: build a bundle's engines and print the trtexec
equivalents."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from avemo_ros.manifest import MANIFEST_NAME, ROLES, BundleError, load_manifest

from .build import build_engines
from .calibration import find_feature_files
from .records import (DEFAULT_CALIB_WINDOWS, DEFAULT_WORKSPACE_MB, PRECISIONS, EngineBuildError,
                      trtexec_command)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.engines",
                                 description="Build TensorRT engines for a model bundle "
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
