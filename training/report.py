"""Evaluation report of a training run: per-model metrics, confusion plots, seed comparison.

Every model (each modality network, each fusion) is scored per window (what the live
node publishes) and per clip (window probabilities averaged over the clip, how the seed
papers score a recording). The same metric code as the bag evaluation is used
(``avemo_ros.evaluation``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from avemo_ros.evaluation import Metrics, compute_metrics, plot_confusion

from .seed_results import SeedResult, seed_result


@dataclass
class ModelScore:
    """Held-out scores of one model of the run."""

    name: str  # e.g. "audio", "fusion:late"
    architecture: str
    window: Metrics
    clip: Metrics
    seed: Optional[SeedResult] = None

    def to_dict(self) -> dict:
        d = {"name": self.name, "architecture": self.architecture,
             "window": self.window.to_dict(), "clip": self.clip.to_dict()}
        if self.seed is not None:
            d["seed"] = {"key": self.seed.key, "paper": self.seed.paper,
                         "setting": self.seed.setting, "architecture": self.seed.architecture,
                         "accuracy": self.seed.accuracy, "note": self.seed.note}
        return d


def clip_votes(probabilities: np.ndarray, labels: np.ndarray, clips: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """(truth, prediction) per clip: the argmax of the clip's mean window probabilities."""
    ids = np.unique(clips)
    truth = np.array([labels[clips == c][0] for c in ids], dtype=np.int64)
    pred = np.array([probabilities[clips == c].mean(axis=0).argmax() for c in ids], dtype=np.int64)
    return truth, pred


def score_model(name: str, architecture: str, probabilities: np.ndarray, labels: np.ndarray,
                clips: np.ndarray, label_names: Sequence[str], seed_key: Optional[str] = None
                ) -> ModelScore:
    """Window- and clip-level metrics of one model's (N, K) probabilities."""
    names = list(label_names)
    pred = probabilities.argmax(axis=1)
    window = compute_metrics([names[i] for i in labels], [names[i] for i in pred], names)
    ct, cp = clip_votes(probabilities, labels, clips)
    clip = compute_metrics([names[i] for i in ct], [names[i] for i in cp], names)
    seed = seed_result(seed_key) if seed_key else None
    return ModelScore(name, architecture, window, clip, seed)


def comparison_table(scores: Sequence[ModelScore], setting: str) -> str:
    """Markdown table: our held-out accuracy next to the seed paper's for the same setting."""
    rows = ["| model | architecture | window acc. | clip acc. | clip macro-F1 "
            "| seed (paper, setting, architecture) | seed acc. | clip - seed |",
            "|---|---|---|---|---|---|---|---|"]
    for s in scores:
        ours = 100 * s.clip.accuracy
        if s.seed is not None:
            seed_cell = f"{s.seed.paper}, {s.seed.setting}, {s.seed.architecture}"
            if s.seed.note:
                seed_cell += f" ({s.seed.note})"
            seed_acc, diff = f"{s.seed.accuracy:.2f}", f"{ours - s.seed.accuracy:+.2f}"
        else:
            seed_cell, seed_acc, diff = "-", "-", "-"
        rows.append(f"| {s.name} | {s.architecture} | {100 * s.window.accuracy:.2f} "
                    f"| {ours:.2f} | {100 * s.clip.macro_f1:.2f} | {seed_cell} | {seed_acc} "
                    f"| {diff} |")
    return f"Held-out {setting}; accuracies in percent.\n\n" + "\n".join(rows) + "\n"


def write_training_report(out_dir: Path | str, scores: Sequence[ModelScore], *, setting: str,
                          extra: Optional[dict] = None) -> dict:
    """report.json, comparison.md and one confusion PNG per model (window level) in out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for s in scores:
        fname = "confusion_" + s.name.replace(":", "_") + ".png"
        plot_confusion(s.window.confusion, s.window.labels, out / fname,
                       title=f"{s.name} ({s.architecture}): window acc. {s.window.accuracy:.3f}, "
                             f"macro-F1 {s.window.macro_f1:.3f}")
    table = comparison_table(scores, setting)
    (out / "comparison.md").write_text(table)
    report = {"setting": setting, "models": [s.to_dict() for s in scores], **(extra or {})}
    (out / "report.json").write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    return report


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
