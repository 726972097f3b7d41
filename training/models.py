"""PyTorch networks of the seed papers (the subset the first model bundle uses).

Every network returns ``(logits, features)``; ``features`` is the penultimate layer that
the intermediate fusion network concatenates (seed 003).
"""
from __future__ import annotations

import torch
from torch import nn


class AudioCnnRnn(nn.Module):
    """Seed 001 audio CNN+RNN on a 200 x 300 spectrogram.

    conv 16@12x16, conv 24@8x12, conv 24@5x7 (each ReLU + 2x2 max-pool), the conv map read
    as a sequence over time by a 2-layer RNN of 128, then Linear 64 + ReLU + Dropout 0.2
    (the features) and Linear n_classes.
    """

    architecture = "seed001_cnn_rnn"

    def __init__(self, n_classes: int, input_shape: tuple[int, int] = (200, 300),
                 hidden: int = 128, feature_dim: int = 64, dropout: float = 0.2):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, (12, 16)), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(16, 24, (8, 12)), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(24, 24, (5, 7)), nn.ReLU(), nn.MaxPool2d(2, 2),
        )
        with torch.no_grad():
            c, f, _ = self.conv(torch.zeros(1, 1, *input_shape)).shape[1:]
        self.rnn = nn.RNN(c * f, hidden, num_layers=2, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden, feature_dim), nn.ReLU(), nn.Dropout(dropout))
        self.classifier = nn.Linear(feature_dim, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.conv(x)  # (B, C, F, T)
        b, c, f, t = z.shape
        seq = z.permute(0, 3, 1, 2).reshape(b, t, c * f)
        out, _ = self.rnn(seq)
        feats = self.head(out[:, -1])
        return self.classifier(feats), feats


class Video3dCnn(nn.Module):
    """3D-CNN over a grey face stack (seed 003 channels 16, 16, 32, 32, kernels 3x3x3).

    The first convolution has a spatial stride of 2 and is followed by a temporal pool, so
    a 20 x 100 x 60 stack costs about 0.15 GMAC; then conv 16, pool, conv 32, pool,
    conv 32, average-pooled to a 4 x 7 spatial grid (where the mouth and the brows are),
    Linear 64 + ReLU (the features).
    """

    architecture = "seed003_3dcnn"

    def __init__(self, n_classes: int, feature_dim: int = 64, dropout: float = 0.3):
        super().__init__()

        def block(cin, cout, stride=1):
            return [nn.Conv3d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm3d(cout),
                    nn.ReLU()]

        self.conv = nn.Sequential(
            *block(1, 16, (1, 2, 2)), nn.MaxPool3d((2, 1, 1)),
            *block(16, 16), nn.MaxPool3d(2),
            *block(16, 32), nn.MaxPool3d(2),
            *block(32, 32), nn.AdaptiveAvgPool3d((1, 4, 7)),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(32 * 28, feature_dim),
                                  nn.ReLU())
        self.classifier = nn.Linear(feature_dim, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.head(self.conv(x))
        return self.classifier(feats), feats


def jitter(batch: list[torch.Tensor], noise: float = 0.1, max_shift: int = 3) -> list[torch.Tensor]:
    """Training augmentation for face stacks: Gaussian noise and one random spatial shift."""
    x = batch[0]
    x = x + noise * torch.randn_like(x)
    dy, dx = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,)))
    return [torch.roll(x, (dy, dx), (-2, -1)), *batch[1:]]


class IntermediateFusion(nn.Module):
    """Seed 003 fusion: concatenate the two penultimate feature vectors, dense 128."""

    architecture = "seed003_concat_dense128"

    def __init__(self, n_classes: int, audio_dim: int = 64, video_dim: int = 64,
                 hidden: int = 128, dropout: float = 0.3):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(audio_dim + video_dim, hidden), nn.ReLU(),
                                 nn.Dropout(dropout))
        self.classifier = nn.Linear(hidden, n_classes)

    def forward(self, audio_features: torch.Tensor, video_features: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.net(torch.cat([audio_features, video_features], dim=1))
        return self.classifier(h), h
