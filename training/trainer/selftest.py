"""The trainer's self-test: a tiny network on Gaussian blobs, in one process or under
torchrun (``python -m training.trainer --selftest DIR``)."""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .config import TrainConfig, TrainResult
from .distributed import distributed_context, seed_everything, shutdown_distributed
from .loop import train_classifier


class _TinyNet(nn.Module):
    """A two-layer perceptron for the self-test (returns logits, features)."""

    architecture = "selftest_mlp"

    def __init__(self, n_in: int = 8, n_classes: int = 3, hidden: int = 16):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_in, hidden), nn.Tanh())
        self.classifier = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.classifier(h), h


def selftest_data(n: int = 192, n_in: int = 8, n_classes: int = 3, seed: int = 0):
    """Overlapping Gaussian blobs: (x_train, y_train, x_val, y_val)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, n_in)) * 1.5
    y = np.arange(n + n // 2) % n_classes
    x = (centres[y] + rng.standard_normal((len(y), n_in))).astype(np.float32)
    return x[:n], y[:n], x[n:], y[n:]


def run_selftest(out_dir: str | Path, epochs: int = 4, batch_size: int = 32,
                 resume: bool = False) -> tuple[nn.Module, TrainResult]:
    """Train the tiny network on blobs into ``out_dir`` (one process, or each torchrun rank).

    No class weights (balanced data) and no dropout, so one process and N ranks on the same
    global batch follow the same trajectory up to float rounding.
    """
    torch.set_num_threads(1)
    xt, yt, xv, yv = selftest_data()
    cfg = TrainConfig(epochs=epochs, lr=1e-2, batch_size=batch_size, patience=epochs, seed=0,
                      class_weights=False)
    seed_everything(cfg.seed)
    model = _TinyNet()
    res = train_classifier(model, [xt], yt, [xv], yv, 3, cfg, "selftest", out_dir=out_dir,
                           resume=resume, device="cpu", progress=False)
    return model, res


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.trainer",
                                 description="trainer self-test (runs under torchrun too)")
    ap.add_argument("--selftest", type=Path, required=True, metavar="OUT_DIR",
                    help="run directory; each rank also writes rank<N>.pt with its final weights")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--resume", action="store_true", help="continue from OUT_DIR/last.pt")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    model, res = run_selftest(args.selftest, args.epochs, args.batch_size, args.resume)
    ctx = distributed_context("cpu")
    torch.save({"model": model.state_dict(), "history": res.history, "rank": ctx.rank,
                "world_size": ctx.world_size}, args.selftest / f"rank{ctx.rank}.pt")
    shutdown_distributed()
    if ctx.is_main:
        print(json.dumps({"world_size": ctx.world_size, "best_epoch": res.best_epoch,
                          "loss": [round(r["loss"], 4) for r in res.history]}))
    return 0
