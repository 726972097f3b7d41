"""MTCNN's three networks (Zhang, Zhang, Li and Qiao, "Joint Face Detection and Alignment
Using Multitask Cascaded Convolutional Networks", IEEE SPL 2016, Fig. 2) in PyTorch, to
load the state dicts the ``facenet-pytorch`` wheel ships (``facenet_pytorch/data/*.pt``,
fetched by ``python -m avemo_ros.tools.fetch_weights mtcnn``) and export them to ONNX.

Layer names and shapes are the state dicts' own (``conv1``, ``prelu1``, ...,
``dense5_1``); every network takes ``(N, 3, H, W)`` images scaled ``(x - 127.5) / 128``:

* :class:`PNet`, fully convolutional: 3x3 conv 10, 2x2 max pool (stride 2), 3x3 conv 16,
  3x3 conv 32, then two 1x1 heads: face probability ``(N, H', W')`` and box offsets
  ``(N, 4, H', W')`` for the 12 x 12 window at every second pixel.
* :class:`RNet` (24 x 24 crops): 3x3 conv 28, 3x3/2 pool, 3x3 conv 48, 3x3/2 pool, 2x2 conv
  64, dense 128; face probability ``(N,)`` and box offsets ``(N, 4)``.
* :class:`ONet` (48 x 48 crops): 3x3 conv 32, 3x3/2 pool, 3x3 conv 64, 3x3/2 pool, 3x3 conv
  64, 2x2/2 pool, 2x2 conv 128, dense 256; face probability, box offsets and five
  landmarks ``(N, 10)`` (x1..x5, y1..y5 as fractions of the crop).

PReLU after every hidden layer; pools round up (the original Caffe models' ceil mode).
Box offsets are (dx1, dy1, dx2, dy2) in fractions of the window's width and height. The
dense layers were learnt on Caffe's column-major images: they read the last conv layer's
maps flattened width first, then height, then channel (checked on the weights: the other
orders score non-faces as faces).
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["PNet", "RNet", "ONet", "NETWORKS", "load_network"]


def _pool(x: torch.Tensor, k: int) -> torch.Tensor:
    return F.max_pool2d(x, k, 2, ceil_mode=True)


def _flatten_caffe(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, W * H * C), width outermost, as the dense weights expect."""
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class PNet(nn.Module):
    """Proposal network: face probability and box offsets on a 2-pixel grid of 12x12 windows."""

    input_size = 12

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = _pool(self.prelu1(self.conv1(x)), 2)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return torch.softmax(self.conv4_1(x), dim=1)[:, 1], self.conv4_2(x)


class RNet(nn.Module):
    """Refine network: face probability and box offsets of 24x24 crops."""

    input_size = 24

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(64 * 3 * 3, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = _pool(self.prelu1(self.conv1(x)), 3)
        x = _pool(self.prelu2(self.conv2(x)), 3)
        x = self.prelu4(self.dense4(_flatten_caffe(self.prelu3(self.conv3(x)))))
        return torch.softmax(self.dense5_1(x), dim=1)[:, 1], self.dense5_2(x)


class ONet(nn.Module):
    """Output network: face probability, box offsets and landmarks of 48x48 crops."""

    input_size = 48

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(128 * 3 * 3, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = _pool(self.prelu1(self.conv1(x)), 3)
        x = _pool(self.prelu2(self.conv2(x)), 3)
        x = _pool(self.prelu3(self.conv3(x)), 2)
        x = self.prelu5(self.dense5(_flatten_caffe(self.prelu4(self.conv4(x)))))
        return (torch.softmax(self.dense6_1(x), dim=1)[:, 1], self.dense6_2(x),
                self.dense6_3(x))


#: name -> network class; the weight files are ``<name>.pt``.
NETWORKS: dict[str, type[nn.Module]] = {"pnet": PNet, "rnet": RNet, "onet": ONet}


def load_network(name: str, weights: Union[str, Path]) -> nn.Module:
    """Network ``name`` (:data:`NETWORKS`) with the state dict in ``weights``, in eval mode;
    every tensor must match (``strict``)."""
    net = NETWORKS[name]()
    state = torch.load(str(weights), map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return net.eval()
