"""Data helpers: class weights, one window per clip, rank shards, input checks; prediction
and the confusion-matrix metrics."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .config import Batch
from .distributed import _model_device


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
