"""The published numbers of the seed papers, keyed so configs and reports can cite them.

Accuracies are test-set accuracies in percent as the papers give them; ``setting``
names the dataset and label set, so a report compares like with like only.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SeedResult:
    """One cell of a seed paper's results table."""

    key: str
    paper: str  # seed document number, see seeds/README.md
    setting: str  # dataset and classes
    role: str  # audio | video | fusion
    architecture: str
    accuracy: float  # percent
    note: str = ""


SEED_RESULTS: dict[str, SeedResult] = {r.key: r for r in (
    SeedResult("001/iemocap4/cnn", "001", "IEMOCAP 4 (H,S,A,N)", "audio", "CNN", 52.23),
    SeedResult("001/iemocap4/cnn_aug", "001", "IEMOCAP 4 (H,S,A,N)", "audio", "CNN + data aug.",
               51.90),
    SeedResult("001/iemocap4/cnn_lstm", "001", "IEMOCAP 4 (H,S,A,N)", "audio", "CNN+LSTM", 39.77),
    SeedResult("001/iemocap4/cnn_rnn", "001", "IEMOCAP 4 (H,S,A,N)", "audio", "CNN+RNN", 54.00),
    SeedResult("001/iemocap3/cnn_rnn", "001", "IEMOCAP 3 (S,A,N)", "audio", "CNN+RNN", 70.25),
    SeedResult("000/iemocap4/joint", "000", "IEMOCAP 4 (H,S,A,N)", "fusion", "CNN+RNN+3DCNN",
               51.94),
    SeedResult("000/iemocap3/joint", "000", "IEMOCAP 3 (S,A,N)", "fusion", "CNN+RNN+3DCNN", 71.75),
    SeedResult("003/ravdess8/audio", "003", "RAVDESS 8", "audio", "1D-CNN", 64.09),
    SeedResult("003/ravdess8/video", "003", "RAVDESS 8", "video", "3D-CNN", 59.07),
    SeedResult("003/ravdess8/fusion", "003", "RAVDESS 8", "fusion", "concat + dense 128", 66.90),
    SeedResult("002/fer7/video", "002", "FER images, 7 classes", "video", "2D CNN on 48x48", 60.0,
               "per image, not per window; 'around 60%'"),
    SeedResult("002/ravdess/audio_train", "002", "RAVDESS", "audio", "MLP on MFCC/chroma/...",
               99.12, "training-set accuracy ('at the time of running'); no test figure given"),
)}


def seed_result(key: str) -> SeedResult:
    """The seed cell for ``key``; KeyError naming the known keys."""
    try:
        return SEED_RESULTS[key]
    except KeyError:
        raise KeyError(f"unknown seed result {key!r}; known: {', '.join(SEED_RESULTS)}") from None
