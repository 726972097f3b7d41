"""Audio networks: seed 001's CNN, CNN+RNN and CNN+LSTM on the spectrogram, seed 003's 1D-CNN
on frame features, seed 002's MLP on summary features."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .common import (FRAME_FEATURES, SPECTROGRAM, SUMMARY_FEATURES, _check_input, _InputNorm,
                     _Network, _out_shape)

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


AUDIO_NETWORKS: dict[str, type[nn.Module]] = {
    c.architecture: c for c in (AudioCnn, AudioCnnRnn, AudioCnnLstm, AudioCnn1d, AudioMlp)}
