"""Evaluation of per-window estimates: metrics, confusion matrix, latency, report files.

One record per analysis window (:class:`WindowRecord`) comes from the offline pipeline
(``avemo_ros.offline``) or from a live run recorded off the ``emotion`` topic; both are
scored and reported the same way by :func:`write_report`, and compared window by window
with :func:`agreement`. NumPy only; matplotlib is imported when a plot is drawn (Agg).
"""
from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np

_LOG = logging.getLogger(__name__)

__all__ = [
    "AGREEMENT_TOLERANCE_NS",
    "Metrics",
    "WindowRecord",
    "agreement",
    "compute_metrics",
    "latency_summary",
    "plot_confusion",
    "plot_latency",
    "read_windows_csv",
    "records_to_dicts",
    "summary_line",
    "write_report",
    "write_windows_csv",
]

NS = 1_000_000_000
#: Window ends closer than this are the same window in :func:`agreement` (5 ms).
AGREEMENT_TOLERANCE_NS = 5_000_000


@dataclass
class WindowRecord:
    """The estimate for one analysis window, with the ground truth it is scored against."""

    source: str  # bag or clip name
    start_ns: int
    end_ns: int
    truth: Optional[str]  # label covering most of the window; None: unknown
    label: Optional[str]  # predicted label; None: no estimate for this window
    confidence: float = 0.0
    probabilities: list[float] = field(default_factory=list)  # in the report's label order
    modalities: int = 0  # bitmask: 1 audio, 2 video
    latency_s: Optional[float] = None  # offline: compute time; live: window end -> arrival


@dataclass
class Metrics:
    """Classification metrics over windows that have both a truth and an estimate."""

    labels: list[str]
    n: int
    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]  # label -> precision, recall, f1, support
    confusion: np.ndarray  # (len(labels), len(labels)) int; rows truth, columns prediction

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the confusion matrix as nested lists)."""
        return {"labels": list(self.labels), "n": self.n, "accuracy": self.accuracy,
                "macro_f1": self.macro_f1, "per_class": self.per_class,
                "confusion": self.confusion.astype(int).tolist()}


# ----------------------------------------------------------------------------- metrics


def compute_metrics(truth: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> Metrics:
    """Accuracy, per-class precision/recall/F1, macro-F1 and the confusion matrix.

    Macro-F1 averages over the labels that occur in ``truth`` or ``pred`` (a label the
    data never mentions says nothing about the model). A class never predicted has
    precision 0; one never true has recall 0. Raises ValueError when the sequences differ
    in length or hold a label outside ``labels``.
    """
    labels = list(labels)
    if len(truth) != len(pred):
        raise ValueError(f"truth and predictions differ in length: {len(truth)} != {len(pred)}")
    if len(set(labels)) != len(labels):
        raise ValueError(f"duplicate labels in {labels}")
    index = {lbl: i for i, lbl in enumerate(labels)}
    unknown = sorted({x for x in list(truth) + list(pred) if x not in index}, key=str)
    if unknown:
        raise ValueError(f"labels {unknown} are not in the label set {labels}")
    k = len(labels)
    confusion = np.zeros((k, k), dtype=np.int64)
    for t, p in zip(truth, pred):
        confusion[index[t], index[p]] += 1
    n = int(confusion.sum())
    tp = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    present = (support > 0) | (predicted > 0)
    per_class = {
        lbl: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
              "support": int(support[i])}
        for i, lbl in enumerate(labels)
    }
    return Metrics(labels=labels, n=n, accuracy=float(tp.sum() / n) if n else 0.0,
                   macro_f1=float(f1[present].mean()) if present.any() else 0.0,
                   per_class=per_class, confusion=confusion)


def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else float("nan")


def latency_summary(latencies: Iterable[Optional[float]]) -> dict[str, Any]:
    """Count, mean, p50, p95, p99 and max of the latencies that are known (seconds)."""
    arr = np.array([x for x in latencies if x is not None and math.isfinite(x)], dtype=np.float64)
    return {"n": int(arr.size), "mean": float(arr.mean()) if arr.size else float("nan"),
            "p50": _percentile(arr, 50), "p95": _percentile(arr, 95),
            "p99": _percentile(arr, 99), "max": float(arr.max()) if arr.size else float("nan")}


# ----------------------------------------------------------------------------- plots


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path | str) -> Path:
    """Lay out and write a figure as a PNG (creating its folder)."""
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out


def plot_confusion(confusion: np.ndarray, labels: Sequence[str], path: Path | str,
                   title: str = "") -> Path:
    """Confusion matrix as a PNG: colour = share of the true class, text = counts."""
    plt = _pyplot()
    cm = np.asarray(confusion, dtype=np.float64)
    if cm.shape != (len(labels), len(labels)):
        raise ValueError(f"confusion matrix {cm.shape} does not match {len(labels)} labels")
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    size = 1.6 + 0.6 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    try:
        im = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("prediction")
        ax.set_ylabel("truth")
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                if cm[i, j]:
                    ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center",
                            color="white" if share[i, j] > 0.5 else "black", fontsize=8)
        ax.set_title(title or "confusion matrix")
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_latency(latencies: Sequence[Optional[float]], path: Path | str, title: str = "") -> Path:
    """Histogram of the latencies in milliseconds with p50/p95 marked, as a PNG."""
    plt = _pyplot()
    summary = latency_summary(latencies)
    ms = np.array([x for x in latencies if x is not None and math.isfinite(x)]) * 1e3
    fig, ax = plt.subplots(figsize=(6.0, 3.5))
    try:
        if ms.size:
            ax.hist(ms, bins=min(40, max(5, ms.size // 2)), color="tab:blue", alpha=0.8)
            for q, style in (("p50", "--"), ("p95", ":")):
                ax.axvline(summary[q] * 1e3, color="black", linestyle=style,
                           label=f"{q} {summary[q] * 1e3:.1f} ms")
            ax.legend()
        else:
            ax.text(0.5, 0.5, "no latency measured", ha="center", va="center",
                    transform=ax.transAxes)
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("windows")
        ax.set_title(title or "latency per window")
        return _save(fig, path)
    finally:
        plt.close(fig)


# ----------------------------------------------------------------------------- files

_FIXED_COLUMNS = ("source", "start_s", "end_s", "truth", "prediction", "confidence")
_TAIL_COLUMNS = ("modalities", "latency_s")


def write_windows_csv(path: Path | str, records: Sequence[WindowRecord],
                      labels: Sequence[str]) -> Path:
    """One row per window: source, start, end (s), truth, prediction, confidence,
    ``p_<label>`` per label, modalities, latency (s). Empty cells where unknown."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*_FIXED_COLUMNS, *(f"p_{lbl}" for lbl in labels), *_TAIL_COLUMNS])
        for r in records:
            probs = (list(r.probabilities) if len(r.probabilities) == len(labels)
                     else [""] * len(labels))
            w.writerow([r.source, f"{r.start_ns / NS:.9f}", f"{r.end_ns / NS:.9f}", r.truth or "",
                        r.label or "", f"{r.confidence:.6f}" if r.label is not None else "",
                        *(f"{p:.6f}" if p != "" else "" for p in probs), r.modalities,
                        "" if r.latency_s is None else f"{r.latency_s:.6f}"])
    return out


def read_windows_csv(path: Path | str) -> tuple[list[WindowRecord], list[str]]:
    """Records and label order back from a ``windows.csv`` written by :func:`write_windows_csv`."""
    with Path(path).open(newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        missing = [c for c in (*_FIXED_COLUMNS, *_TAIL_COLUMNS) if c not in fields]
        if missing:
            raise ValueError(f"{path}: not a windows.csv (missing columns {missing})")
        labels = [c[2:] for c in fields if c.startswith("p_")]
        records = []
        for row in reader:
            probs = [row[f"p_{lbl}"] for lbl in labels]
            records.append(WindowRecord(
                source=row["source"], start_ns=int(round(float(row["start_s"]) * NS)),
                end_ns=int(round(float(row["end_s"]) * NS)), truth=row["truth"] or None,
                label=row["prediction"] or None,
                confidence=float(row["confidence"]) if row["confidence"] else 0.0,
                probabilities=[float(p) for p in probs] if all(probs) else [],
                modalities=int(row["modalities"] or 0),
                latency_s=float(row["latency_s"]) if row["latency_s"] else None))
    return records, labels


def _json_safe(value: Any) -> Any:
    """NaN/inf -> None and NumPy scalars/arrays -> Python, for strict JSON."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_report(out_dir: Path | str, records: Sequence[WindowRecord], labels: Sequence[str], *,
                 extra: Optional[dict] = None) -> dict[str, Any]:
    """Score ``records`` and write report.json, windows.csv, confusion.png and latency.png.

    Windows without an estimate or without a truth are counted, not scored. Returns the
    report dict (also in report.json; non-finite numbers become null).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = list(labels)
    scored = [r for r in records if r.truth is not None and r.label is not None]
    outside = sorted({r.truth for r in scored if r.truth not in labels})
    if outside:
        _LOG.warning("ground-truth labels %s are not in the model's label set: those windows "
                     "count as errors", outside)
    all_labels = labels + outside
    metrics = compute_metrics([r.truth for r in scored], [r.label for r in scored], all_labels)
    sources = sorted({r.source for r in records})
    report: dict[str, Any] = {
        "metrics": metrics.to_dict(),
        "windows": len(records),
        "windows_scored": len(scored),
        "windows_without_estimate": sum(1 for r in records if r.label is None),
        "windows_without_truth": sum(1 for r in records if r.truth is None),
        "modalities": {name: sum(1 for r in records if r.label is not None and r.modalities == m)
                       for name, m in (("audio", 1), ("video", 2), ("audio+video", 3))},
        "latency_s": latency_summary(r.latency_s for r in records),
        "sources": sources,
        "extra": dict(extra or {}),
    }
    report["ground_truth"] = bool(scored)
    report["summary"] = summary_line(report)
    report = _json_safe(report)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    write_windows_csv(out / "windows.csv", records, labels)
    plot_confusion(metrics.confusion, all_labels, out / "confusion.png",
                   title=report["summary"])
    plot_latency([r.latency_s for r in records], out / "latency.png")
    return report


def summary_line(report: dict[str, Any]) -> str:
    """One line on the scores of a :func:`write_report` report; without any window that
    has both a ground truth and an estimate it says so (no accuracy of 0)."""
    m = report["metrics"]
    if not report.get("windows_scored"):
        why = ("no ground truth in the input" if report.get("windows_without_truth", 0)
               >= report.get("windows", 0) else "no window has both a truth and an estimate")
        return (f"not scored: {why} ({report.get('windows', 0)} windows, "
                f"{report.get('windows', 0) - report.get('windows_without_estimate', 0)} "
                "estimated); accuracy and macro-F1 not computed")
    return (f"accuracy {m['accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f} over "
            f"{report['windows_scored']} scored windows")


# ----------------------------------------------------------------------------- agreement


def agreement(records_a: Sequence[WindowRecord], records_b: Sequence[WindowRecord], *,
              tolerance_ns: int = AGREEMENT_TOLERANCE_NS) -> dict[str, Any]:
    """Compare two runs window by window (e.g. offline vs. live replay of the same bag).

    Windows are matched by source and end stamp (within ``tolerance_ns``, nearest first,
    one-to-one). Returns counts of matched and unmatched windows, how many matched pairs
    both have an estimate (``compared``), how many of those share the label, that share
    (``agreement``; NaN when nothing was compared) and the mean / max absolute difference
    of their probabilities.
    """
    by_source: dict[str, list[WindowRecord]] = {}
    for r in records_b:
        by_source.setdefault(r.source, []).append(r)
    for lst in by_source.values():
        lst.sort(key=lambda r: r.end_ns)
    used: set[int] = set()
    pairs: list[tuple[WindowRecord, WindowRecord]] = []
    for a in sorted(records_a, key=lambda r: (r.source, r.end_ns)):
        cands = by_source.get(a.source, [])
        ends = np.array([r.end_ns for r in cands], dtype=np.int64)
        if not ends.size:
            continue
        i = int(np.searchsorted(ends, a.end_ns))
        best, best_d = None, None
        for j in range(max(0, i - 2), min(len(cands), i + 3)):
            d = abs(int(ends[j]) - a.end_ns)
            if d <= tolerance_ns and id(cands[j]) not in used and (best_d is None or d < best_d):
                best, best_d = cands[j], d
        if best is not None:
            used.add(id(best))
            pairs.append((a, best))
    compared = [(a, b) for a, b in pairs if a.label is not None and b.label is not None]
    same = sum(1 for a, b in compared if a.label == b.label)
    diffs = [float(np.max(np.abs(np.asarray(a.probabilities) - np.asarray(b.probabilities))))
             for a, b in compared
             if len(a.probabilities) == len(b.probabilities) and len(a.probabilities)]
    return {
        "matched": len(pairs),
        "unmatched_a": len(records_a) - len(pairs),
        "unmatched_b": len(records_b) - len(pairs),
        "compared": len(compared),
        "estimate_only_a": sum(1 for a, b in pairs if a.label is not None and b.label is None),
        "estimate_only_b": sum(1 for a, b in pairs if a.label is None and b.label is not None),
        "same_label": same,
        "agreement": same / len(compared) if compared else float("nan"),
        "probability_diff_mean": float(np.mean(diffs)) if diffs else float("nan"),
        "probability_diff_max": float(np.max(diffs)) if diffs else float("nan"),
    }


def records_to_dicts(records: Sequence[WindowRecord]) -> list[dict[str, Any]]:
    """Plain dicts of the records (e.g. for JSON)."""
    return [asdict(r) for r in records]
