"""What every network shares: the audio feature kinds, input checks, the input BatchNorm and
the single-input network base class; the registry lookup."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

SPECTROGRAM = "spectrogram"
FRAME_FEATURES = "frame_features"
SUMMARY_FEATURES = "summary_features"
AUDIO_FEATURE_KINDS = (SPECTROGRAM, FRAME_FEATURES, SUMMARY_FEATURES)


def _check_input(x: torch.Tensor, shape: Sequence[int], name: str) -> None:
    """ValueError naming the network when ``x`` is not ``(B, *shape)``."""
    if tuple(x.shape[1:]) != tuple(shape):
        want = ", ".join(str(s) for s in shape)
        raise ValueError(f"{name}: expected input of shape (B, {want}), got {tuple(x.shape)}")


@torch.no_grad()
def _out_shape(module: nn.Module, shape: Sequence[int]) -> torch.Size:
    """Per-sample output shape of ``module`` for a ``(1, *shape)`` input (eval mode)."""
    was_training = module.training
    module.eval()
    try:
        out = module(torch.zeros(1, *shape))
    finally:
        module.train(was_training)
    if out.numel() == 0:
        raise ValueError(f"input shape {tuple(shape)} is too small for this network")
    return out.shape[1:]


class _InputNorm(nn.BatchNorm1d):
    """BatchNorm over the input features that also trains on a batch of one sample.

    Standardises features of very different scales (MFCC, chroma, contrast, dB). A
    single-sample batch (the tail of an epoch) is normalised with the running statistics.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] == 1 and x.dim() == 2:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                False, 0.0, self.eps)
        return super().forward(x)


class _Network(nn.Module):
    """Common attributes and the example inputs of a single-input network."""

    architecture = ""
    role = ""
    input_shape: tuple[int, ...] = ()
    channel_dim = True  # input tensor is (B, 1, *input_shape), else (B, *input_shape)

    @property
    def tensor_shape(self) -> tuple[int, ...]:
        """Per-sample shape of the input tensor (with the channel axis where there is one)."""
        return (1, *self.input_shape) if self.channel_dim else tuple(self.input_shape)

    def example_inputs(self, batch: int = 1, generator: torch.Generator | None = None
                       ) -> tuple[torch.Tensor, ...]:
        """Random inputs of the shape the network expects (for export and tests)."""
        return (torch.randn(batch, *self.tensor_shape, generator=generator),)



def lookup(tables: dict[str, dict[str, type[nn.Module]]], role: str, name: str
           ) -> type[nn.Module]:
    """The class registered as ``name`` for ``role`` in ``tables``; ValueError naming both."""
    if role not in tables:
        raise ValueError(f"unknown network role {role!r}; roles: {', '.join(tables)}")
    if name not in tables[role]:
        raise ValueError(f"unknown {role} network {name!r}; known: {', '.join(tables[role])}")
    return tables[role][name]
