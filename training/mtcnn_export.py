"""MTCNN's networks from the facenet-pytorch wheel's state dicts to ONNX, for the node's
detector (:mod:`avemo_ros.face_mtcnn`, ONNX Runtime, no torch).

    python -m training.mtcnn_export [--weights-dir DIR] [--force] [--check]

``DIR`` (default ``<weights root>/mtcnn``, the folder ``python -m
avemo_ros.tools.fetch_weights mtcnn`` fills; fetched here when the state dicts are
missing from it) holds ``pnet.pt``, ``rnet.pt``, ``onet.pt``; this writes ``pnet.onnx``
(batch, height and width dynamic), ``rnet.onnx`` and ``onet.onnx`` (batch dynamic) beside
them, each checked by ``onnx.checker`` and against PyTorch in ONNX Runtime on random
inputs, and the record ``mtcnn_onnx.json`` (the weights' provenance and SHA-256, the ONNX
files' SHA-256, the parity figures). With the record matching, nothing is done (and torch
is not even imported): ``scripts/setup.sh`` runs this on every setup.

The networks: :mod:`training.models.mtcnn` (our definitions after the paper, loading the
state dicts strictly).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from avemo_ros.face_mtcnn import (ONNX_FILES, RECORD, RECORD_FORMAT, default_model_dir,
                                  export_problems)
from avemo_ros.tools.fetch_weights import SOURCES, WeightsError, fetch, sha256_of

log = logging.getLogger(__name__)
OPSET = 17
#: Max abs ORT vs PyTorch difference an export may show (probabilities and offsets).
ATOL = 1e-4
#: ONNX inputs and outputs per network, and the axes left dynamic.
IO = {
    "pnet": (["image"], ["prob", "reg"],
             {"image": {0: "batch", 2: "height", 3: "width"},
              "prob": {0: "batch", 1: "rows", 2: "columns"},
              "reg": {0: "batch", 2: "rows", 3: "columns"}}),
    "rnet": (["crops"], ["prob", "reg"], {"crops": {0: "batch"}, "prob": {0: "batch"},
                                          "reg": {0: "batch"}}),
    "onet": (["crops"], ["prob", "reg", "landmarks"],
             {"crops": {0: "batch"}, "prob": {0: "batch"}, "reg": {0: "batch"},
              "landmarks": {0: "batch"}}),
}
#: Random test inputs per network (N, 3, H, W): an odd pyramid level and a batch.
PARITY_SHAPES = {"pnet": [(1, 3, 12, 12), (1, 3, 37, 53), (2, 3, 120, 90)],
                 "rnet": [(1, 3, 24, 24), (7, 3, 24, 24)],
                 "onet": [(1, 3, 48, 48), (5, 3, 48, 48)]}


class ExportError(RuntimeError):
    """An exported network fails its checks or differs from PyTorch."""


def weight_files(folder: Path) -> dict[str, Path]:
    """network -> its state-dict file in ``folder`` (``pnet.pt``, ...)."""
    return {net: folder / f"{net}.pt" for net in ONNX_FILES}


def ensure_weights(folder: Path) -> dict[str, Path]:
    """The three state dicts in ``folder``; fetched from the pinned wheel when ``folder``
    is a weights root's ``mtcnn`` folder, else :class:`WeightsError` when one is missing."""
    files = weight_files(folder)
    if not all(p.is_file() for p in files.values()):
        if folder.name != SOURCES["mtcnn"].name:
            missing = [str(p) for p in files.values() if not p.is_file()]
            raise WeightsError(f"{', '.join(missing)} missing: fetch them with python -m "
                               "avemo_ros.tools.fetch_weights mtcnn --dest ROOT "
                               "(into ROOT/mtcnn)")
        fetch("mtcnn", folder.parent)
    return files


def parity(net, path: Path, shapes: Sequence[tuple[int, ...]], seed: int = 0) -> float:
    """Max abs difference, every output, ONNX Runtime (one thread) vs PyTorch on uniform
    random inputs in the network's range [-1, 1]."""
    import onnxruntime as ort
    import torch

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), sess_options=opts,
                                providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for shape in shapes:
        x = torch.rand(*shape, generator=gen) * 2 - 1
        with torch.no_grad():
            ref = [t.numpy() for t in net(x)]
        got = sess.run(None, {name: x.numpy()})
        for r, g in zip(ref, got):
            if r.shape != g.shape:
                raise ExportError(f"{path.name}: output shape {g.shape}, PyTorch {r.shape}")
            worst = max(worst, float(np.max(np.abs(r - g))))
    return worst


def export_network(net_name: str, weights: Path, out: Path) -> dict:
    """One network to ``out`` (written whole or not at all); its record entry."""
    import onnx
    import torch

    from .models.mtcnn import load_network

    net = load_network(net_name, weights)
    inputs, outputs, axes = IO[net_name]
    example = torch.zeros(PARITY_SHAPES[net_name][-1])
    tmp = out.with_name(f"{out.name}.{os.getpid()}.part")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (example,), str(tmp), input_names=inputs,
                              output_names=outputs, dynamic_axes=axes, opset_version=OPSET,
                              dynamo=False)
        onnx.checker.check_model(onnx.load(str(tmp)), full_check=True)
        err = parity(net, tmp, PARITY_SHAPES[net_name])
        if err > ATOL:
            raise ExportError(f"{out.name}: ONNX Runtime differs from PyTorch by {err:.2e}")
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("%s -> %s: ORT vs PyTorch max abs diff %.2e", weights.name, out, err)
    return {"sha256": sha256_of(out), "bytes": out.stat().st_size, "inputs": inputs,
            "outputs": outputs, "dynamic_axes": {k: sorted(v.values()) for k, v in axes.items()},
            "parity_max_abs": err, "parity_shapes": [list(s) for s in PARITY_SHAPES[net_name]]}


def export(folder: "str | Path | None" = None, *, force: bool = False) -> tuple[dict, bool]:
    """Make the three ONNX files and the record in ``folder`` (default
    :func:`avemo_ros.face_mtcnn.default_model_dir`) unless they are in place; (record,
    whether anything was written)."""
    folder = Path(folder) if folder is not None else default_model_dir()
    if not force and not export_problems(folder):
        return json.loads((folder / RECORD).read_text()), False
    t0 = time.perf_counter()
    files = ensure_weights(folder)
    src = SOURCES["mtcnn"]
    pinned = {src.dest_name(m): sha for m, sha in src.members.items() if sha}
    weights = {}
    for net, path in files.items():
        sha = sha256_of(path)
        if sha != pinned[path.name]:
            raise WeightsError(f"{path}: SHA-256 {sha}, pinned {pinned[path.name]} "
                               f"({src.requirement}): fetch it again (--force)")
        weights[path.name] = {"sha256": sha, "bytes": path.stat().st_size}
    import onnxruntime
    import torch

    record = {"format": RECORD_FORMAT,
              "source": {"package": src.package, "version": src.version,
                         "licence": src.licence, "licence_file": "LICENSE.md",
                         "paper": "Zhang, Zhang, Li, Qiao: Joint Face Detection and Alignment "
                                  "Using Multitask Cascaded Convolutional Networks, IEEE "
                                  "Signal Processing Letters 23(10), 2016"},
              "weights": weights,
              "onnx": {ONNX_FILES[net]: export_network(net, path, folder / ONNX_FILES[net])
                       for net, path in files.items()},
              "input_scaling": "(x - 127.5) / 128, grey replicated to 3 channels",
              "opset": OPSET, "torch": torch.__version__,
              "onnxruntime": onnxruntime.__version__}
    record["export_s"] = round(time.perf_counter() - t0, 2)
    tmp = folder / f"{RECORD}.{os.getpid()}.part"
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    tmp.replace(folder / RECORD)
    problems = export_problems(folder)
    if problems:
        raise ExportError("; ".join(problems))
    return record, True


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line: export (or ``--check``); exit 1 on any problem."""
    ap = argparse.ArgumentParser(prog="python -m training.mtcnn_export",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--weights-dir", type=Path, default=None,
                    help=f"folder of pnet.pt, rnet.pt, onet.pt (default {default_model_dir()})")
    ap.add_argument("--force", action="store_true", help="export even when in place")
    ap.add_argument("--check", action="store_true", help="only verify, write nothing")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    folder = args.weights_dir or default_model_dir()
    if args.check:
        problems = export_problems(folder)
        for p in problems:
            log.error("mtcnn: %s", p)
        if not problems:
            log.info("mtcnn: ONNX files ok (%s)", folder)
        return 1 if problems else 0
    try:
        record, written = export(folder, force=args.force)
    except (WeightsError, ExportError, OSError) as e:
        log.error("mtcnn: %s", e)
        return 1
    except ImportError as e:  # torch and onnx are training requirements
        log.error("mtcnn: the export needs the training environment (%s): pip install "
                  "torch==2.13.0 onnx", e)
        return 1
    worst = max(v["parity_max_abs"] for v in record["onnx"].values())
    log.info("mtcnn: %s in %s (ORT vs PyTorch max abs diff %.1e)",
             "exported" if written else "ONNX files already in place", folder, worst)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
