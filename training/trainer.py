"""Classification trainer: class weights, early stopping, checkpoints with exact resume, a
per-epoch metrics log, and data parallelism under torchrun (one script on CPU and on GPUs).

    torchrun --standalone --nproc_per_node 2 -m training.trainer --selftest /tmp/selftest

A run directory (``out_dir``) holds ``last.pt`` (everything needed to continue, rewritten
atomically every epoch), ``best.pt`` (the best weights so far) and ``metrics.jsonl``.
Checkpoints are pickles: load only run directories you trust.
"""
from __future__ import annotations

import argparse
import atexit
import json
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

log = logging.getLogger(__name__)

MONITORS = ("val_accuracy", "val_macro_f1")
CHECKPOINT_FORMAT = 1
LAST, BEST, METRICS = "last.pt", "best.pt", "metrics.jsonl"
# Config fields a resumed run may change (not ``epochs`` under cosine decay: it sets the schedule).
_RESUMABLE_CHANGES = ("epochs", "patience")

Batch = list[torch.Tensor]
LossFn = Callable[[Any, torch.Tensor], torch.Tensor]


@dataclass
class TrainConfig:
    """Hyper-parameters. Defaults follow seeds 000/001 (Adam lr 1e-4, weight decay 0.01,
    batch 32); seed 003 used lr 1e-3 (run configs override)."""

    epochs: int = 20
    lr: float = 1e-4
    weight_decay: float = 0.01
    batch_size: int = 32  # global batch: split over the ranks under torchrun
    patience: int = 5  # epochs without improvement of ``monitor`` before stopping
    seed: int = 0
    class_weights: bool = True  # inverse-frequency weights in the built-in cross-entropy
    cosine: bool = False  # cosine learning-rate decay over ``epochs``
    monitor: str = "val_accuracy"  # early stopping / best checkpoint on this: or "val_macro_f1"
    grad_clip: float | None = None  # clip the global gradient norm to this
    deterministic: bool = True  # deterministic algorithms where torch has them (warns otherwise)

    def __post_init__(self) -> None:
        problems = []
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1, got {self.epochs}")
        if not self.lr > 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            problems.append(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if self.patience < 1:
            problems.append(f"patience must be >= 1, got {self.patience}")
        if self.monitor not in MONITORS:
            problems.append(f"monitor must be one of {MONITORS}, got {self.monitor!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            problems.append(f"grad_clip must be > 0 or None, got {self.grad_clip}")
        if problems:
            raise ValueError("invalid TrainConfig: " + "; ".join(problems))


@dataclass
class TrainResult:
    """Outcome of a run; the model holds the weights of ``best_epoch`` (1-based)."""

    best_epoch: int
    best_val_accuracy: float
    history: list[dict] = field(default_factory=list)
    best_score: float = float("nan")  # the ``monitor`` value at best_epoch
    monitor: str = "val_accuracy"
    stopped_early: bool = False
    resumed_from_epoch: int = 0  # 0: a fresh run


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in a (possibly one-process) data-parallel run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


# ---------------------------------------------------------------- seeding and devices

def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (all devices) so that runs repeat.

    ``deterministic`` also selects deterministic torch algorithms (cuDNN included); ops
    without one warn instead of failing.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)


def distributed_context(device: str | torch.device | None = None) -> DistContext:
    """Rank, world size and device from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK).

    Starts the process group once when WORLD_SIZE > 1 (nccl on CUDA, gloo on CPU). The
    device defaults to cuda:LOCAL_RANK when CUDA is available, else the CPU.
    """
    if dist.is_available() and dist.is_initialized():
        world, rank = dist.get_world_size(), dist.get_rank()
    else:
        world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", local)
        if device.index >= torch.cuda.device_count():
            raise RuntimeError(f"LOCAL_RANK {local} asks for {device} but only "
                               f"{torch.cuda.device_count()} CUDA devices are visible")
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        if not dist.is_available():
            raise RuntimeError(f"WORLD_SIZE={world} but this torch build has no torch.distributed")
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(backend=backend, **kwargs)
        atexit.register(shutdown_distributed, barrier=False)
        log.info("rank %d of %d on %s (%s)", rank, world, device, backend)
    return DistContext(rank=rank, world_size=world, local_rank=local, device=device)


def shutdown_distributed(barrier: bool = True) -> None:
    """Destroy the process group if one is up. Call it at the end of a distributed script:
    the barrier lets no rank close its connections while a peer still uses them. (At exit,
    distributed_context's fallback destroys the group without a barrier, so that a failed
    rank never waits for peers that will not come.)"""
    if dist.is_available() and dist.is_initialized():
        try:
            if barrier:
                dist.barrier()
        finally:
            dist.destroy_process_group()


def _model_device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


# ---------------------------------------------------------------- data helpers

def balanced_class_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights (scarce classes count more), 0 for absent classes, scaled
    so that the mean weight over the samples is 1 (the loss keeps its unweighted scale)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes)
    counts = counts.astype(np.float64)
    present = max(int((counts > 0).sum()), 1)
    w = np.where(counts > 0, counts.sum() / (present * np.maximum(counts, 1)), 0.0)
    return torch.tensor(w, dtype=torch.float32)


def one_per_group(groups: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    """Indices of one randomly chosen member of every group."""
    order = gen.permutation(len(groups))
    _, first = np.unique(groups[order], return_index=True)
    return np.sort(order[first])


def shard_indices(order: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """This rank's share of an epoch order: padded (wrapping around) to a multiple of the
    world size, then every world_size-th index from ``rank``. Consecutive local batches of
    b indices on all ranks together are the consecutive global batches of b * world_size."""
    if world_size == 1:
        return order
    pad = (-len(order)) % world_size
    if pad:
        order = np.concatenate([order, np.resize(order, pad)])
    return order[rank::world_size]


def logits_of(outputs: Any) -> torch.Tensor:
    """The class logits in a network output: a tensor, the first item of a tuple/list
    (``(logits, features)``), or the ``"logits"`` entry of a dict."""
    if isinstance(outputs, torch.Tensor):
        return outputs
    if isinstance(outputs, (tuple, list)) and outputs:
        return outputs[0]
    if isinstance(outputs, dict) and "logits" in outputs:
        return outputs["logits"]
    raise TypeError("network output has no logits: expected a tensor, a (logits, ...) tuple or "
                    f"a dict with 'logits', got {type(outputs).__name__}")


def _features_of(outputs: Any) -> torch.Tensor | None:
    if isinstance(outputs, (tuple, list)) and len(outputs) > 1:
        return outputs[1]
    if isinstance(outputs, dict):
        return outputs.get("features")
    return None


def _check_inputs(inputs: Sequence[np.ndarray], labels: np.ndarray, n_classes: int,
                  what: str) -> None:
    if len(inputs) == 0:
        raise ValueError(f"{what}: no input arrays")
    sizes = [len(x) for x in inputs]
    if any(s != len(labels) for s in sizes):
        raise ValueError(f"{what}: input lengths {sizes} differ from {len(labels)} labels")
    if len(labels) == 0:
        raise ValueError(f"{what}: no samples")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"{what}: labels must lie in [0, {n_classes}), "
                         f"got {labels.min()}..{labels.max()}")


def _to_device(arrays: Sequence[np.ndarray], idx: np.ndarray | slice,
               device: torch.device) -> Batch:
    return [torch.from_numpy(np.asarray(x[idx], dtype=np.float32)).to(device, non_blocking=True)
            for x in arrays]


# ---------------------------------------------------------------- prediction and metrics

def predict(model: nn.Module, inputs: Sequence[np.ndarray], batch_size: int = 64
            ) -> tuple[np.ndarray, np.ndarray]:
    """(logits, features) of a model over numpy inputs, in eval mode, on the model's device.

    Outputs come back as float32 numpy; a network that returns no features (or a dict
    without ``"features"``) gives a (n, 0) feature array. Leaves the model in eval mode.
    """
    if isinstance(model, DistributedDataParallel):
        model = model.module
    model.eval()
    device = _model_device(model)
    logits, feats = [], []
    n = len(inputs[0])
    with torch.no_grad():
        for i in range(0, n, batch_size):
            out = model(*_to_device(inputs, slice(i, i + batch_size), device))
            lo = logits_of(out)
            fe = _features_of(out)
            logits.append(lo.float().cpu().numpy())
            feats.append(fe.float().cpu().numpy() if fe is not None
                         else np.zeros((len(lo), 0), np.float32))
    if not logits:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
    return np.concatenate(logits), np.concatenate(feats)


def confusion_metrics(confusion: np.ndarray) -> tuple[float, float]:
    """(accuracy, macro-F1) of a confusion matrix [true, predicted]; macro-F1 averages the
    classes that occur in the labels or the predictions."""
    cm = np.asarray(confusion, dtype=np.float64)
    total = cm.sum()
    if total == 0:
        return 0.0, 0.0
    tp = np.diag(cm)
    denom = cm.sum(0) + cm.sum(1)
    seen = denom > 0
    f1 = 2 * tp[seen] / denom[seen]
    return float(tp.sum() / total), float(f1.mean())


# ---------------------------------------------------------------- checkpoints

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


# ---------------------------------------------------------------- the training loop

def _all_reduce(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    if ctx.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def _evaluate(model: nn.Module, inputs: Sequence[np.ndarray], labels: np.ndarray, n_classes: int,
              loss: Callable[[Any, torch.Tensor], torch.Tensor], ctx: DistContext,
              batch_size: int) -> tuple[np.ndarray, float]:
    """Confusion matrix and mean loss over the validation set, sharded over the ranks."""
    model.eval()
    mine = np.arange(ctx.rank, len(labels), ctx.world_size)
    stats = np.zeros(n_classes * n_classes + 1)  # confusion counts, then the loss sum
    with torch.no_grad():
        for i in range(0, len(mine), batch_size):
            idx = mine[i:i + batch_size]
            out = model(*_to_device(inputs, idx, ctx.device))
            y = torch.from_numpy(labels[idx]).to(ctx.device)
            stats[-1] += float(loss(out, y)) * len(idx)
            pred = logits_of(out).argmax(1).cpu().numpy()
            stats[:-1] += np.bincount(labels[idx] * n_classes + pred, minlength=n_classes ** 2)
    stats = _all_reduce(torch.from_numpy(stats).to(ctx.device), ctx).cpu().numpy()
    return stats[:-1].reshape(n_classes, n_classes), float(stats[-1] / max(len(labels), 1))


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


def train_classifier(model: nn.Module, train_inputs: Sequence[np.ndarray],
                     train_labels: np.ndarray, val_inputs: Sequence[np.ndarray],
                     val_labels: np.ndarray, n_classes: int, cfg: TrainConfig,
                     name: str = "model", augment: Callable[[Batch], Batch] | None = None,
                     groups: np.ndarray | None = None, *, loss_fn: LossFn | None = None,
                     out_dir: str | Path | None = None, resume: bool = False,
                     device: str | torch.device | None = None,
                     progress: bool = True) -> TrainResult:
    """Train with Adam, early stopping on ``cfg.monitor`` and the best weights kept.

    ``groups``: when given (e.g. the clip of each window), every epoch uses one randomly
    chosen sample per group, so overlapping windows of a clip add variety, not weight.
    ``augment(batch) -> batch``: applied to each training batch (tensors on the device).
    ``loss_fn(outputs, y)``: replaces the (class-weighted) cross-entropy; it gets the raw
    network output (e.g. a dict with auxiliary heads) and must return the batch-mean loss.
    ``out_dir``: run directory for last.pt / best.pt / metrics.jsonl; ``resume`` continues
    from its last.pt (a fresh run when there is none) and refuses one written with another
    config, model architecture or data. ``device``: default cuda:LOCAL_RANK, else the CPU;
    the model returns to the device it came on. Under torchrun (WORLD_SIZE > 1) the model is
    wrapped in DistributedDataParallel, ``cfg.batch_size`` is the global batch, and only
    rank 0 logs and writes the run directory.
    """
    train_labels = np.asarray(train_labels, dtype=np.int64)
    val_labels = np.asarray(val_labels, dtype=np.int64)
    _check_inputs(train_inputs, train_labels, n_classes, f"{name} training set")
    _check_inputs(val_inputs, val_labels, n_classes, f"{name} validation set")
    if groups is not None:
        groups = np.asarray(groups)
        if len(groups) != len(train_labels):
            raise ValueError(f"{name}: {len(groups)} groups for {len(train_labels)} samples")
    if resume and out_dir is None:
        raise ValueError("resume=True needs an out_dir holding last.pt")
    ctx = distributed_context(device)
    home = _model_device(model)
    fingerprint = _data_fingerprint(train_labels, val_labels, n_classes, groups)
    if ctx.distributed:
        _check_same_on_all_ranks({"config": asdict(cfg), "data": fingerprint,
                                  "out_dir": str(out_dir), "resume": resume}, ctx)

    seed_everything(cfg.seed + ctx.rank, cfg.deterministic)  # rank streams: dropout, augment
    gen = np.random.default_rng(cfg.seed)  # epoch orders: the same on every rank
    model.to(ctx.device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs) if cfg.cosine else None
    if loss_fn is None:
        weights = balanced_class_weights(train_labels, n_classes) if cfg.class_weights else None
        ce = nn.CrossEntropyLoss(weight=None if weights is None else weights.to(ctx.device))
        loss = lambda out, y: ce(logits_of(out), y)  # noqa: E731
    else:
        if cfg.class_weights:
            log.info("%s: custom loss_fn, so class_weights is not applied by the trainer "
                     "(build weights into the loss with balanced_class_weights)", name)
        loss = loss_fn

    run = Path(out_dir) if out_dir is not None else None
    state = _RunState()
    if run is not None and ctx.is_main:
        run.mkdir(parents=True, exist_ok=True)
    if resume and (run / LAST).is_file():
        state = _resume(run / LAST, model, opt, sched, gen, cfg, fingerprint, ctx, name)
    elif resume and ctx.is_main:
        log.info("%s: no %s yet, starting a fresh run", name, run / LAST)
    elif run is not None and ctx.is_main and (run / LAST).exists():
        log.warning("%s: overwriting the run in %s (resume=False)", name, run)
    if run is not None and ctx.is_main:
        with open(run / METRICS, "w") as f:  # the log agrees with the checkpoint continued
            f.writelines(json.dumps(row) + "\n" for row in state.history)
    resumed_from = state.epoch

    net = model
    if ctx.distributed:
        net = DistributedDataParallel(
            model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    per_rank = -(-cfg.batch_size // ctx.world_size)
    if ctx.is_main and per_rank * ctx.world_size != cfg.batch_size:
        log.warning("%s: batch %d does not split over %d ranks: global batch %d", name,
                    cfg.batch_size, ctx.world_size, per_rank * ctx.world_size)

    while not state.finished:
        epoch = state.epoch + 1
        t0 = time.perf_counter()
        net.train()
        order = gen.permutation(one_per_group(groups, gen) if groups is not None
                                else np.arange(len(train_labels)))
        local = shard_indices(order, ctx.rank, ctx.world_size)
        sums = torch.zeros(3, dtype=torch.float64, device=ctx.device)  # loss, correct, count
        bar = tqdm(range(0, len(local), per_rank), desc=f"{name} epoch {epoch}/{cfg.epochs}",
                   unit="batch", leave=False, disable=not (progress and ctx.is_main))
        for i in bar:
            idx = np.sort(local[i:i + per_rank])
            batch = _to_device(train_inputs, idx, ctx.device)
            if augment is not None:
                batch = augment(batch)
            y = torch.from_numpy(train_labels[idx]).to(ctx.device)
            out = net(*batch)
            batch_loss = loss(out, y)
            opt.zero_grad(set_to_none=True)
            batch_loss.backward()
            if cfg.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            with torch.no_grad():
                correct = (logits_of(out).argmax(1) == y).sum().double()
                sums += torch.stack([batch_loss.detach().double() * len(idx), correct,
                                     torch.ones_like(correct) * len(idx)])
        loss_sum, n_correct, total = _all_reduce(sums, ctx).tolist()
        lr = opt.param_groups[0]["lr"]
        if sched is not None:
            sched.step()
        if ctx.distributed:  # rank 0's BatchNorm statistics everywhere: the model it saves
            for buf in model.buffers():
                dist.broadcast(buf, 0)
        cm, val_loss = _evaluate(model, val_inputs, val_labels, n_classes, loss, ctx,
                                 max(64, per_rank))
        val_acc, val_f1 = confusion_metrics(cm)
        row = {"epoch": epoch, "loss": loss_sum / max(total, 1),
               "train_accuracy": n_correct / max(total, 1), "val_loss": val_loss,
               "val_accuracy": val_acc, "val_macro_f1": val_f1, "lr": lr,
               "seconds": round(time.perf_counter() - t0, 3)}
        state.epoch = epoch
        state.history.append(row)
        improved = row[cfg.monitor] > state.best_score
        if improved:
            state.best_score, state.best_epoch = row[cfg.monitor], epoch
            state.best_val_accuracy = val_acc
            state.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        state.stopped_early = not improved and epoch - state.best_epoch >= cfg.patience
        state.finished = state.stopped_early or epoch >= cfg.epochs
        if ctx.is_main:
            log.info("%s epoch %d/%d: loss %.4f train acc %.3f | val loss %.4f acc %.3f "
                     "macro-F1 %.3f | lr %.2e %.1f s%s", name, epoch, cfg.epochs, row["loss"],
                     row["train_accuracy"], val_loss, val_acc, val_f1, lr, row["seconds"],
                     " (best)" if improved else "")
        if run is not None:
            _save(run, state, improved, model, opt, sched, gen, cfg, fingerprint, ctx, name)
        if state.stopped_early and ctx.is_main:
            log.info("%s: early stop at epoch %d (best %s %.4f at epoch %d)", name, epoch,
                     cfg.monitor, state.best_score, state.best_epoch)
    if ctx.distributed:
        dist.barrier()
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
    model.to(home)
    model.eval()
    return TrainResult(best_epoch=state.best_epoch, best_val_accuracy=state.best_val_accuracy,
                       history=state.history, best_score=state.best_score, monitor=cfg.monitor,
                       stopped_early=state.stopped_early, resumed_from_epoch=resumed_from)


def _check_same_on_all_ranks(what: dict, ctx: DistContext) -> None:
    seen: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(seen, what)
    for r, other in enumerate(seen):
        if other != what:
            diff = sorted(k for k in what if other.get(k) != what.get(k))
            raise ValueError(f"rank {ctx.rank} and rank {r} differ in {diff}: every rank "
                             "must train the same config on the same data")


# ---------------------------------------------------------------- self-test entry

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
    ap = argparse.ArgumentParser(description="trainer self-test (runs under torchrun too)")
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


if __name__ == "__main__":
    raise SystemExit(main())
