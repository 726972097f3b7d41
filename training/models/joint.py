"""Seed 000's joint network: (CNN+RNN) + 3D-CNN branches and a fusion head trained end to end,
and its loss."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .audio import AUDIO_NETWORKS
from .common import lookup
from .fusion import IntermediateFusion
from .video import VIDEO_NETWORKS

_BRANCHES = {"audio": AUDIO_NETWORKS, "video": VIDEO_NETWORKS}

class JointOutput(NamedTuple):
    """Everything the joint network computes: the fused (logits, features) first, then
    each branch's logits and features."""

    logits: torch.Tensor
    features: torch.Tensor
    audio_logits: torch.Tensor
    audio_features: torch.Tensor
    video_logits: torch.Tensor
    video_features: torch.Tensor


class JointCnnRnn3dCnn(nn.Module):
    """Seed 000 (CNN+RNN) + 3D-CNN trained end to end.

    ``audio_net`` (default seed001_cnn_rnn), ``video_net`` (default avemo_3dcnn: seed 000
    gives no 3D-CNN table) and ``fusion_net`` (concat + Dense 128, the seed003 head; seed
    000 does not say how it fuses), each following the ``(logits, features)`` convention,
    so they export as three graphs (the joint module itself is not exported). ``forward``
    returns a :class:`JointOutput`, a tuple whose first two items are the fused
    ``(logits, features)`` followed by each branch's; train it with :func:`joint_loss`
    (e.g. as the trainer's ``loss_fn``), which also trains each branch's own classifier so
    that a window with one modality still has a head. ``input_shape`` is
    ``(audio_shape, video_shape)``.
    """

    architecture = "seed000_joint"
    role = "fusion"
    fusion_inputs = "features"

    def __init__(self, n_classes: int, input_shape: tuple[tuple, tuple] | None = None,
                 audio: str = "seed001_cnn_rnn", video: str = "avemo_3dcnn",
                 hidden: int = 128, dropout: float = 0.3):
        super().__init__()
        audio_shape, video_shape = input_shape or (None, None)
        self.audio_net = lookup(_BRANCHES, "audio", audio)(n_classes, input_shape=audio_shape)
        self.video_net = lookup(_BRANCHES, "video", video)(n_classes, input_shape=video_shape)
        self.fusion_net = IntermediateFusion(n_classes, self.audio_net.feature_dim,
                                             self.video_net.feature_dim, hidden, dropout)
        self.fusion_net.architecture = self.architecture  # the bundle's fusion graph is this head
        self.feature_kind = self.audio_net.feature_kind
        self.input_shape = (self.audio_net.input_shape, self.video_net.input_shape)
        self.feature_dim = hidden

    def example_inputs(self, batch: int = 1, generator: torch.Generator | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """Random (audio input, face stack)."""
        return (*self.audio_net.example_inputs(batch, generator),
                *self.video_net.example_inputs(batch, generator))

    def forward(self, audio: torch.Tensor, video: torch.Tensor) -> JointOutput:
        la, fa = self.audio_net(audio)
        lv, fv = self.video_net(video)
        logits, feats = self.fusion_net(fa, fv)
        return JointOutput(logits, feats, la, fa, lv, fv)


def joint_loss(outputs: JointOutput, y: torch.Tensor, aux_weight: float = 0.5,
               class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of the fused logits plus ``aux_weight`` times that of each branch
    (the seed000_joint network's training loss)."""
    if not isinstance(outputs, JointOutput):
        raise TypeError(f"joint_loss needs the JointOutput of a {JointCnnRnn3dCnn.architecture} "
                        f"network, got {type(outputs).__name__}")
    ce = nn.functional.cross_entropy
    if class_weights is not None:
        class_weights = class_weights.to(outputs.logits.device)
    fused = ce(outputs.logits, y, weight=class_weights)
    aux = ce(outputs.audio_logits, y, weight=class_weights) + ce(outputs.video_logits, y,
                                                                 weight=class_weights)
    return fused + aux_weight * aux
