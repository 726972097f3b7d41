"""The training loop: Adam, early stopping on the monitored metric, the best weights kept."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from .checkpoints import _data_fingerprint, _resume, _RunState, _save
from .config import LAST, METRICS, Batch, LossFn, TrainConfig, TrainResult
from .data import (_check_inputs, _to_device, balanced_class_weights, confusion_metrics,
                   logits_of, one_per_group, shard_indices)
from .distributed import (_all_reduce, _check_same_on_all_ranks, _model_device, DistContext,
                          distributed_context, seed_everything)

log = logging.getLogger("training.trainer")


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


def _better(row: dict, state, monitor: str) -> bool:
    """Whether this epoch beats the best so far: a higher ``monitor``, or the same with a
    lower validation loss (a small validation set reaches its best accuracy early and then
    ties; the earliest of the ties is the least trained, least confident model)."""
    if row[monitor] != state.best_score:
        return row[monitor] > state.best_score
    best = next((r for r in state.history if r["epoch"] == state.best_epoch), None)
    return best is not None and row["val_loss"] < best["val_loss"]


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
        improved = _better(row, state, cfg.monitor)
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
