"""Checkpoints: last.pt (exact resume: model, optimizer, scheduler, random streams), best.pt,
metrics.jsonl; refusing to resume another architecture, config or data."""
from __future__ import annotations

import json
import logging
import math
import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .config import BEST, CHECKPOINT_FORMAT, LAST, METRICS, _RESUMABLE_CHANGES, TrainConfig
from .distributed import DistContext

log = logging.getLogger("training.trainer")


def model_signature(model: nn.Module) -> dict:
    """Class, architecture name and parameter/buffer shapes: what a resumed run must match."""
    if isinstance(model, DistributedDataParallel):
        model = model.module
    return {"class": type(model).__qualname__,
            "architecture": getattr(model, "architecture", None),
            "tensors": {k: list(v.shape) for k, v in model.state_dict().items()}}


def _atomic_save(obj: dict, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint written by train_classifier (``last.pt`` or ``best.pt``), on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    ck = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a training checkpoint of format {CHECKPOINT_FORMAT}")
    return ck


def load_weights(model: nn.Module, path: str | Path) -> dict:
    """Load a checkpoint's weights into ``model`` after checking its architecture; returns
    the checkpoint (epoch, score, config, ...)."""
    ck = load_checkpoint(path)
    problem = _signature_mismatch(ck["architecture"], model_signature(model))
    if problem:
        raise ValueError(f"{path}: {problem}")
    model.load_state_dict(ck["model"])
    return ck


def _signature_mismatch(saved: dict, now: dict) -> str | None:
    if (saved["class"], saved["architecture"]) != (now["class"], now["architecture"]):
        return (f"checkpoint holds a {saved['class']} ({saved['architecture']}), "
                f"this model is a {now['class']} ({now['architecture']})")
    a, b = saved["tensors"], now["tensors"]
    diff = [f"{k}: missing in the model" for k in a if k not in b]
    diff += [f"{k}: not in the checkpoint" for k in b if k not in a]
    diff += [f"{k}: shape {a[k]} in the checkpoint, {b[k]} in the model"
             for k in a if k in b and a[k] != b[k]]
    if diff:
        more = f" (and {len(diff) - 5} more)" if len(diff) > 5 else ""
        return "model architecture differs from the checkpoint: " + "; ".join(diff[:5]) + more
    return None


def _config_mismatch(saved: dict, cfg: TrainConfig) -> list[str]:
    now = asdict(cfg)
    allowed = set(_RESUMABLE_CHANGES) - ({"epochs"} if cfg.cosine else set())
    keys = sorted(set(saved) | set(now))
    return [f"{k} {saved.get(k)!r} in the checkpoint, {now.get(k)!r} now"
            for k in keys if k not in allowed and saved.get(k) != now.get(k)]


def _rng_state(device: torch.device) -> dict:
    nps = np.random.get_state(legacy=False)
    state = {"python": random.getstate(),
             "numpy": {**nps, "state": {**nps["state"], "key": nps["state"]["key"].tolist()}},
             "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    random.setstate(state["python"])
    nps = state["numpy"]
    key = np.asarray(nps["state"]["key"], dtype=np.uint32)
    np.random.set_state({**nps, "state": {**nps["state"], "key": key}})
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _data_fingerprint(train_labels: np.ndarray, val_labels: np.ndarray, n_classes: int,
                      groups: np.ndarray | None) -> dict:
    return {"n_classes": int(n_classes), "n_train": int(len(train_labels)),
            "n_val": int(len(val_labels)),
            "train_counts": np.bincount(train_labels, minlength=n_classes).tolist(),
            "val_counts": np.bincount(val_labels, minlength=n_classes).tolist(),
            "groups": None if groups is None else int(len(np.unique(groups)))}


@dataclass
class _RunState:
    """Where a run stands after an epoch: what last.pt saves and resume restores."""

    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    best_score: float = -math.inf
    best_epoch: int = 0
    best_val_accuracy: float = float("nan")
    best_state: dict | None = None
    stopped_early: bool = False
    finished: bool = False


def _resume(path: Path, model: nn.Module, opt: torch.optim.Optimizer, sched: Any,
            gen: np.random.Generator, cfg: TrainConfig, fingerprint: dict, ctx: DistContext,
            name: str) -> _RunState:
    """Restore model, optimizer, scheduler, random streams and progress from last.pt, after
    checking that it was written by the same architecture, config and data."""
    ck = load_checkpoint(path)
    problem = _signature_mismatch(ck["architecture"], model_signature(model))
    if problem:
        raise ValueError(f"cannot resume from {path}: {problem}")
    diff = _config_mismatch(ck["config"], cfg)
    if diff:
        raise ValueError(f"cannot resume from {path}: the config differs: " + "; ".join(diff))
    if ck["data"] != fingerprint:
        raise ValueError(f"cannot resume from {path}: the data differ "
                         f"(checkpoint {ck['data']}, now {fingerprint})")
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    if sched is not None:
        sched.load_state_dict(ck["scheduler"])
    gen.bit_generator.state = ck["index_rng"]
    rngs = ck["rng"]
    if len(rngs) != ctx.world_size and ctx.is_main:
        log.warning("%s: resuming on %d ranks a run saved from %d: the random streams differ "
                    "from an uninterrupted run", name, ctx.world_size, len(rngs))
    if ctx.rank < len(rngs):
        _set_rng_state(rngs[ctx.rank], ctx.device)
    state = _RunState(epoch=ck["epoch"], history=ck["history"], best_score=ck["best_score"],
                      best_epoch=ck["best_epoch"], best_val_accuracy=ck["best_val_accuracy"],
                      best_state=ck["best_state"], stopped_early=ck["stopped_early"])
    state.finished = state.stopped_early or state.epoch >= cfg.epochs
    if ctx.is_main:
        log.info("%s: resuming %s after epoch %d (best %s %.4f at epoch %d)%s", name, path,
                 state.epoch, cfg.monitor, state.best_score, state.best_epoch,
                 ", already finished" if state.finished else "")
    return state


def _save(run: Path, state: _RunState, improved: bool, model: nn.Module,
          opt: torch.optim.Optimizer, sched: Any, gen: np.random.Generator, cfg: TrainConfig,
          fingerprint: dict, ctx: DistContext, name: str) -> None:
    """Append the epoch's metrics row, write best.pt when improved and last.pt always (rank
    0); every rank contributes its random-stream state."""
    rngs: list[Any] = [_rng_state(ctx.device)]
    if ctx.distributed:
        rngs = [None] * ctx.world_size
        dist.all_gather_object(rngs, _rng_state(ctx.device))
    if not ctx.is_main:
        return
    with open(run / METRICS, "a") as f:
        f.write(json.dumps(state.history[-1]) + "\n")
    common = {"format": CHECKPOINT_FORMAT, "name": name, "config": asdict(cfg),
              "architecture": model_signature(model), "data": fingerprint, "monitor": cfg.monitor}
    if improved:
        _atomic_save({**common, "model": state.best_state, "epoch": state.best_epoch,
                      "score": state.best_score, "val_accuracy": state.best_val_accuracy},
                     run / BEST)
    _atomic_save({**common, **vars(state), "world_size": ctx.world_size,
                  "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                  "optimizer": opt.state_dict(),
                  "scheduler": sched.state_dict() if sched is not None else None,
                  "index_rng": gen.bit_generator.state, "rng": rngs}, run / LAST)
