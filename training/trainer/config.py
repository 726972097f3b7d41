"""What a training run is asked (TrainConfig) and what it gives back (TrainResult)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch


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
