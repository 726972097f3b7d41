"""Fusion networks over the two branches: seed 003's intermediate (concatenated features,
Dense 128) and seed 002's late fusion (weighted probabilities; the rule and its fitting live
in ``avemo_ros.fusion_rule``)."""
from __future__ import annotations

import torch
from torch import nn

from .common import _check_input

class IntermediateFusion(nn.Module):
    """Seed 003 fusion: concatenate the two penultimate feature vectors, Dense 128 + ReLU
    + Dropout 0.3 (the features), Dense n_classes."""

    architecture = "seed003_concat_dense128"
    role = "fusion"
    fusion_inputs = "features"

    def __init__(self, n_classes: int, audio_dim: int = 64, video_dim: int = 64,
                 hidden: int = 128, dropout: float = 0.3,
                 input_shape: tuple[tuple[int], tuple[int]] | None = None):
        super().__init__()
        if input_shape is not None:
            (audio_dim,), (video_dim,) = input_shape
        self.input_shape = ((audio_dim,), (video_dim,))
        self.feature_dim = hidden
        self.net = nn.Sequential(nn.Linear(audio_dim + video_dim, hidden), nn.ReLU(),
                                 nn.Dropout(dropout))
        self.classifier = nn.Linear(hidden, n_classes)

    def example_inputs(self, batch: int = 1, generator: torch.Generator | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """Random (audio_features, video_features)."""
        return tuple(torch.randn(batch, *s, generator=generator) for s in self.input_shape)

    def forward(self, audio_features: torch.Tensor, video_features: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        _check_input(audio_features, self.input_shape[0], f"{self.architecture} audio_features")
        _check_input(video_features, self.input_shape[1], f"{self.architecture} video_features")
        h = self.net(torch.cat([audio_features, video_features], dim=1))
        return self.classifier(h), h


class LateFusion(nn.Module):
    """Seed 002 late fusion: weighted average of the two branches' class probabilities.

    ``p = w * softmax(audio_logits) + (1 - w) * softmax(video_logits)``; returns
    ``(log p, p)`` (p clamped at 1e-30 so the log stays finite). ``w`` is a buffer, not
    trained by gradient: choose it with ``avemo_ros.fusion_rule.fit_late_fusion_weight`` and
    :meth:`set_weight` (the same rule as ``fusion_rule.late_fusion``).
    """

    architecture = "seed002_late_weighted"
    role = "fusion"
    fusion_inputs = "logits"

    def __init__(self, n_classes: int, weight: float = 0.5,
                 input_shape: tuple[tuple[int], tuple[int]] | None = None):
        super().__init__()
        self.input_shape = ((n_classes,), (n_classes,))
        if input_shape is not None and tuple(map(tuple, input_shape)) != self.input_shape:
            raise ValueError(f"{self.architecture}: inputs are the {n_classes} class logits of "
                             f"each branch, got input_shape {input_shape}")
        self.feature_dim = n_classes
        self.register_buffer("weight", torch.tensor(0.0))
        self.set_weight(weight)

    def set_weight(self, weight: float) -> None:
        """Set the audio weight ``w`` in [0, 1]."""
        if not 0.0 <= float(weight) <= 1.0:
            raise ValueError(f"{self.architecture}: weight must be in [0, 1], got {weight}")
        self.weight.fill_(float(weight))

    def example_inputs(self, batch: int = 1, generator: torch.Generator | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """Random (audio_logits, video_logits)."""
        return tuple(torch.randn(batch, *s, generator=generator) for s in self.input_shape)

    def forward(self, audio_logits: torch.Tensor, video_logits: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        _check_input(audio_logits, self.input_shape[0], f"{self.architecture} audio_logits")
        _check_input(video_logits, self.input_shape[1], f"{self.architecture} video_logits")
        p = self.weight * audio_logits.softmax(1) + (1 - self.weight) * video_logits.softmax(1)
        return p.clamp_min(1e-30).log(), p

