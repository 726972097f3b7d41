"""PyTorch networks of the seed papers (000-003) and our own variants, selectable by name.

Conventions shared by every network:

- ``forward`` returns ``(logits, features)``; ``features`` is the penultimate layer, what
  the fusion networks concatenate (seed 003).
- Class attributes ``architecture`` (the string id in the registry and the bundle
  manifest), ``role`` ("audio", "video" or "fusion") and ``input_shape`` (the default
  per-sample feature shape, as the feature extractors produce it); the constructor's
  ``input_shape`` overrides the default and the instance keeps what it was built for.
  Instances also carry ``feature_dim`` and ``example_inputs(batch)``.
- Input tensors (batch first): spectrogram ``(B, 1, F, T)``; frame features ``(B, 180, T)``;
  summary features ``(B, 65)``; grey face stacks ``(B, 1, N, H, W)``. Audio networks say
  which of the three audio feature kinds they need in ``feature_kind``; fusion networks
  say whether they take the branches' ``features`` or ``logits`` in ``fusion_inputs``.

Build one by name with :func:`build_network`; the registries are :data:`AUDIO_NETWORKS`,
:data:`VIDEO_NETWORKS` and :data:`FUSION_NETWORKS`.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
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


# --------------------------------------------------------------------------- audio

def _seed001_conv() -> nn.Sequential:
    """Seed 001 convolution stack: 16@12x16, 24@8x12, 24@5x7, each ReLU + 2x2 max-pool."""
    return nn.Sequential(
        nn.Conv2d(1, 16, (12, 16)), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(16, 24, (8, 12)), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(24, 24, (5, 7)), nn.ReLU(), nn.MaxPool2d(2, 2),
    )


class AudioCnn(_Network):
    """Seed 001 audio CNN on a 200 x 300 spectrogram (the slide's table).

    The seed001 convolution stack, flatten, Linear 64 + ReLU + Dropout 0.2 (the features),
    Linear n_classes.
    """

    architecture = "seed001_cnn"
    role = "audio"
    feature_kind = SPECTROGRAM
    input_shape = (200, 300)

    def __init__(self, n_classes: int, input_shape: tuple[int, int] | None = None,
                 feature_dim: int = 64, dropout: float = 0.2):
        super().__init__()
        self.input_shape = tuple(input_shape or type(self).input_shape)
        self.feature_dim = feature_dim
        self.conv = _seed001_conv()
        flat = int(np.prod(_out_shape(self.conv, self.tensor_shape)))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, feature_dim), nn.ReLU(),
                                  nn.Dropout(dropout))
        self.classifier = nn.Linear(feature_dim, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_input(x, self.tensor_shape, self.architecture)
        feats = self.head(self.conv(x))
        return self.classifier(feats), feats


class AudioCnnRnn(_Network):
    """Seed 001 audio CNN+RNN on a 200 x 300 spectrogram.

    The seed001 convolution stack, its map read as a sequence over time by a 2-layer RNN
    of 128 (the slide's "RNN 128x2"), the last step through Linear 64 + ReLU + Dropout 0.2
    (the features) and Linear n_classes.
    """

    architecture = "seed001_cnn_rnn"
    role = "audio"
    feature_kind = SPECTROGRAM
    input_shape = (200, 300)
    recurrent = nn.RNN

    def __init__(self, n_classes: int, input_shape: tuple[int, int] | None = None,
                 hidden: int = 128, feature_dim: int = 64, dropout: float = 0.2):
        super().__init__()
        self.input_shape = tuple(input_shape or type(self).input_shape)
        self.feature_dim = feature_dim
        self.conv = _seed001_conv()
        c, f, _ = _out_shape(self.conv, self.tensor_shape)
        self.rnn = self.recurrent(c * f, hidden, num_layers=2, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden, feature_dim), nn.ReLU(), nn.Dropout(dropout))
        self.classifier = nn.Linear(feature_dim, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_input(x, self.tensor_shape, self.architecture)
        z = self.conv(x)  # (B, C, F, T)
        b, c, f, t = z.shape
        seq = z.permute(0, 3, 1, 2).reshape(b, t, c * f)
        out, _ = self.rnn(seq)
        feats = self.head(out[:, -1])
        return self.classifier(feats), feats


class AudioCnnLstm(AudioCnnRnn):
    """Seed 001 audio CNN+LSTM: as :class:`AudioCnnRnn` with a 2-layer LSTM of 128.

    The slides list CNN+LSTM without its own table; we read it as the CNN+RNN table with
    the RNN replaced by an LSTM of the same size.
    """

    architecture = "seed001_cnn_lstm"
    recurrent = nn.LSTM


class AudioCnn1d(_Network):
    """Seed 003 audio 1D-CNN over frame features (B, 180, T): 40 MFCC + 12 chroma + 128 log-mel.

    The seed gives "convolution and max-pooling layers" then dense 256 and dense 64 (ReLU);
    the convolution part is our choice: input BatchNorm (the 180 rows have very different
    scales), Conv1d 256@5 + BN + ReLU + max-pool 2, Conv1d 128@5 + BN + ReLU + max-pool 2
    (so T >= 4), flatten, Dense 256 + ReLU + Dropout 0.3, Dense 64 + ReLU (the features),
    Linear n_classes.
    """

    architecture = "seed003_1dcnn"
    role = "audio"
    feature_kind = FRAME_FEATURES
    input_shape = (180, 20)
    channel_dim = False

    def __init__(self, n_classes: int, input_shape: tuple[int, int] | None = None,
                 feature_dim: int = 64, dropout: float = 0.3):
        super().__init__()
        self.input_shape = tuple(input_shape or type(self).input_shape)
        rows, t = self.input_shape
        if t < 4:
            raise ValueError(f"{self.architecture}: needs at least 4 time frames, got {t}")
        self.feature_dim = feature_dim
        self.conv = nn.Sequential(
            _InputNorm(rows),
            nn.Conv1d(rows, 256, 5, padding=2), nn.BatchNorm1d(256), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(256, 128, 5, padding=2), nn.BatchNorm1d(128), nn.ReLU(), nn.MaxPool1d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(128 * (t // 4), 256), nn.ReLU(),
                                  nn.Dropout(dropout), nn.Linear(256, feature_dim), nn.ReLU())
        self.classifier = nn.Linear(feature_dim, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_input(x, self.tensor_shape, self.architecture)
        feats = self.head(self.conv(x))
        return self.classifier(feats), feats


class AudioMlp(_Network):
    """Seed 002 audio MLP on the 65-d summary vector (means of 40 MFCC, 12 chroma,
    7 spectral contrast, 6 tonnetz).

    The seed uses a scikit-learn MLP without giving its sizes; ours: input BatchNorm (the
    blocks have very different scales), Linear 256 + ReLU + Dropout 0.3, Linear 64 + ReLU
    (the features), Linear n_classes.
    """

    architecture = "seed002_mlp"
    role = "audio"
    feature_kind = SUMMARY_FEATURES
    input_shape = (65,)
    channel_dim = False

    def __init__(self, n_classes: int, input_shape: tuple[int] | None = None,
                 hidden: int = 256, feature_dim: int = 64, dropout: float = 0.3):
        super().__init__()
        self.input_shape = tuple(input_shape or type(self).input_shape)
        self.feature_dim = feature_dim
        (d,) = self.input_shape
        self.net = nn.Sequential(_InputNorm(d), nn.Linear(d, hidden), nn.ReLU(),
                                 nn.Dropout(dropout), nn.Linear(hidden, feature_dim), nn.ReLU())
        self.classifier = nn.Linear(feature_dim, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_input(x, self.tensor_shape, self.architecture)
        feats = self.net(x)
        return self.classifier(feats), feats


# --------------------------------------------------------------------------- video

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


# --------------------------------------------------------------------------- fusion

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
    trained by gradient: choose it with :func:`fit_late_fusion_weight` and
    :meth:`set_weight`.
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


def fit_late_fusion_weight(p_audio: np.ndarray, p_video: np.ndarray, y: np.ndarray,
                           grid: int = 101) -> float:
    """Audio weight ``w`` on ``grid`` points of [0, 1] that maximises the accuracy of
    ``argmax(w * p_audio + (1 - w) * p_video)`` on (validation) labels ``y``.

    Ties go to the ``w`` closest to 0.5.
    """
    pa, pv = np.asarray(p_audio, dtype=np.float64), np.asarray(p_video, dtype=np.float64)
    y = np.asarray(y)
    if pa.ndim != 2 or pa.shape != pv.shape or y.shape != (len(pa),) or len(pa) == 0:
        raise ValueError(f"fit_late_fusion_weight: need p_audio and p_video of one shape (N, C) "
                         f"and y of shape (N,), N > 0; got {pa.shape}, {pv.shape}, {y.shape}")
    if grid < 2:
        raise ValueError(f"fit_late_fusion_weight: grid must have at least 2 points, got {grid}")
    ws = np.linspace(0.0, 1.0, grid)
    acc = np.array([((w * pa + (1 - w) * pv).argmax(1) == y).mean() for w in ws])
    best = np.flatnonzero(acc == acc.max())
    return float(ws[best[np.argmin(np.abs(ws[best] - 0.5))]])


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
        self.audio_net = build_network("audio", audio, n_classes, audio_shape)
        self.video_net = build_network("video", video, n_classes, video_shape)
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


# --------------------------------------------------------------------------- registry

AUDIO_NETWORKS: dict[str, type[nn.Module]] = {
    c.architecture: c for c in (AudioCnn, AudioCnnRnn, AudioCnnLstm, AudioCnn1d, AudioMlp)}
VIDEO_NETWORKS: dict[str, type[nn.Module]] = {
    c.architecture: c for c in (Seed003Video3dCnn, Video3dCnn, VideoFrameCnn)}
FUSION_NETWORKS: dict[str, type[nn.Module]] = {
    c.architecture: c for c in (IntermediateFusion, LateFusion, JointCnnRnn3dCnn)}
NETWORKS = {"audio": AUDIO_NETWORKS, "video": VIDEO_NETWORKS, "fusion": FUSION_NETWORKS}


def network_class(role: str, name: str) -> type[nn.Module]:
    """The class registered as ``name`` for ``role`` ("audio", "video" or "fusion")."""
    if role not in NETWORKS:
        raise ValueError(f"unknown network role {role!r}; roles: {', '.join(NETWORKS)}")
    if name not in NETWORKS[role]:
        raise ValueError(f"unknown {role} network {name!r}; known: {', '.join(NETWORKS[role])}")
    return NETWORKS[role][name]


def build_network(role: str, name: str, n_classes: int, input_shape=None, **kw) -> nn.Module:
    """A new network by role and name; ``input_shape`` (per sample, see each class)
    overrides the class default, ``kw`` go to the constructor."""
    cls = network_class(role, name)
    return cls(n_classes, input_shape=input_shape, **kw)


def audio_feature_kind(name: str) -> str:
    """The audio feature kind (spectrogram | frame_features | summary_features) a
    registered audio network (or the seed000_joint network's default audio trunk) needs."""
    if name == JointCnnRnn3dCnn.architecture:
        return AudioCnnRnn.feature_kind
    return network_class("audio", name).feature_kind


def jitter(batch: list[torch.Tensor], noise: float = 0.1,
           max_shift: int = 3) -> list[torch.Tensor]:
    """Training augmentation for face stacks: Gaussian noise and one random spatial shift."""
    x = batch[0]
    x = x + noise * torch.randn_like(x)
    dy, dx = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,)))
    return [torch.roll(x, (dy, dx), (-2, -1)), *batch[1:]]
