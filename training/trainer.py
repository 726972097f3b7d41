"""A small, deterministic classification trainer: class weights, early stopping, metrics log."""
from __future__ import annotations

import copy
import logging
import random
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Hyper-parameters (seed 003 for lr and batch; seeds 000/001 use lr 1e-4, wd 0.01)."""

    epochs: int = 20
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 32
    patience: int = 5
    seed: int = 0
    class_weights: bool = True
    cosine: bool = False  # cosine learning-rate decay over ``epochs``


@dataclass
class TrainResult:
    best_epoch: int
    best_val_accuracy: float
    history: list[dict] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so that runs repeat."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def balanced_class_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights (scarce classes count more), mean 1 over present classes."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / n_classes, 0.0)
    return torch.tensor(w, dtype=torch.float32)


def one_per_group(groups: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    """Indices of one randomly chosen member of every group."""
    order = gen.permutation(len(groups))
    _, first = np.unique(groups[order], return_index=True)
    return np.sort(order[first])


def predict(model: nn.Module, inputs: Sequence[np.ndarray], batch_size: int = 64
            ) -> tuple[np.ndarray, np.ndarray]:
    """(logits, features) of a model over numpy inputs, in eval mode."""
    model.eval()
    logits, feats = [], []
    n = len(inputs[0])
    with torch.no_grad():
        for i in range(0, n, batch_size):
            batch = [torch.from_numpy(np.asarray(x[i:i + batch_size], dtype=np.float32))
                     for x in inputs]
            lo, fe = model(*batch)
            logits.append(lo.numpy())
            feats.append(fe.numpy())
    return np.concatenate(logits), np.concatenate(feats)


def train_classifier(model: nn.Module, train_inputs: Sequence[np.ndarray], train_labels: np.ndarray,
                     val_inputs: Sequence[np.ndarray], val_labels: np.ndarray, n_classes: int,
                     cfg: TrainConfig, name: str = "model",
                     augment: Callable[[list[torch.Tensor]], list[torch.Tensor]] | None = None,
                     groups: np.ndarray | None = None) -> TrainResult:
    """Train with Adam and early stopping on validation accuracy; keeps the best weights.

    ``groups``: when given (e.g. the clip of each window), every epoch uses one randomly
    chosen sample per group, so overlapping windows of a clip add variety, not weight.
    """
    seed_everything(cfg.seed)
    weights = balanced_class_weights(train_labels, n_classes) if cfg.class_weights else None
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs) if cfg.cosine else None
    gen = np.random.default_rng(cfg.seed)
    best_acc, best_epoch, best_state = -1.0, -1, None
    history: list[dict] = []
    for epoch in range(cfg.epochs):
        model.train()
        order = gen.permutation(one_per_group(groups, gen) if groups is not None
                                else np.arange(len(train_labels)))
        n = len(order)
        total, correct, loss_sum = 0, 0, 0.0
        bar = tqdm(range(0, n, cfg.batch_size), desc=f"{name} epoch {epoch + 1}/{cfg.epochs}",
                   unit="batch", leave=False)
        for i in bar:
            idx = np.sort(order[i:i + cfg.batch_size])
            batch = [torch.from_numpy(np.asarray(x[idx], dtype=np.float32)) for x in train_inputs]
            if augment is not None:
                batch = augment(batch)
            y = torch.from_numpy(train_labels[idx])
            logits, _ = model(*batch)
            loss = loss_fn(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y).sum())
            total += len(idx)
        if sched is not None:
            sched.step()
        val_logits, _ = predict(model, val_inputs)
        val_acc = float((val_logits.argmax(1) == val_labels).mean()) if len(val_labels) else 0.0
        row = {"epoch": epoch + 1, "loss": loss_sum / max(total, 1),
               "train_accuracy": correct / max(total, 1), "val_accuracy": val_acc}
        history.append(row)
        log.info("%s epoch %d: loss %.4f train acc %.3f val acc %.3f", name, epoch + 1,
                 row["loss"], row["train_accuracy"], val_acc)
        if val_acc > best_acc:
            best_acc, best_epoch, best_state = val_acc, epoch + 1, copy.deepcopy(model.state_dict())
        elif epoch + 1 - best_epoch >= cfg.patience:
            log.info("%s: early stop at epoch %d (best %d)", name, epoch + 1, best_epoch)
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainResult(best_epoch=best_epoch, best_val_accuracy=best_acc, history=history)
