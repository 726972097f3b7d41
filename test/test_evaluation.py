"""Evaluation metrics against hand-computed values; report files; run agreement."""
import json

import numpy as np
import pytest

from avemo_ros.evaluation import (
    WindowRecord,
    agreement,
    compute_metrics,
    latency_summary,
    read_windows_csv,
    write_report,
)

LABELS = ["a", "b", "c", "d"]


def test_metrics_hand_computed():
    truth = ["a", "a", "a", "b", "b", "c"]
    pred = ["a", "a", "b", "b", "c", "c"]
    m = compute_metrics(truth, pred, LABELS)
    assert m.n == 6
    assert m.accuracy == pytest.approx(4 / 6)
    # a: tp 2, predicted 2, support 3 -> P 1, R 2/3, F1 0.8
    # b: tp 1, predicted 2, support 2 -> P 1/2, R 1/2, F1 1/2
    # c: tp 1, predicted 2, support 1 -> P 1/2, R 1, F1 2/3
    assert m.per_class["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8,
                                              "support": 3})
    assert m.per_class["b"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5,
                                              "support": 2})
    assert m.per_class["c"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3,
                                              "support": 1})
    assert m.per_class["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # "d" never occurs: left out of the macro average
    assert m.macro_f1 == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    expected = np.array([[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(m.confusion, expected)
    d = m.to_dict()
    assert d["confusion"] == expected.tolist()
    json.dumps(d)


def test_metrics_predicted_but_never_true_counts_in_macro():
    m = compute_metrics(["a", "a"], ["a", "d"], LABELS)
    # a: P 1 R 1/2 F1 2/3; d: predicted once, never true -> F1 0
    assert m.macro_f1 == pytest.approx((2 / 3 + 0.0) / 2)


def test_metrics_bad_input():
    with pytest.raises(ValueError, match="length"):
        compute_metrics(["a"], [], LABELS)
    with pytest.raises(ValueError, match="not in the label set"):
        compute_metrics(["a"], ["z"], LABELS)
    empty = compute_metrics([], [], LABELS)
    assert empty.n == 0 and empty.accuracy == 0.0


def test_latency_summary():
    s = latency_summary([0.1, 0.2, None, 0.3, 0.4, float("nan")])
    assert s["n"] == 4
    assert s["p50"] == pytest.approx(0.25)
    assert s["max"] == pytest.approx(0.4)
    assert latency_summary([])["n"] == 0


def _rec(source, end_s, truth, label, probs=None, latency=0.05):
    return WindowRecord(source=source, start_ns=int((end_s - 3) * 1e9), end_ns=int(end_s * 1e9),
                        truth=truth, label=label, confidence=max(probs or [0.0]),
                        probabilities=probs or [], modalities=3 if label else 0,
                        latency_s=latency)


def test_write_report_files_and_counts(tmp_path):
    records = [
        _rec("x.mcap", 3, "a", "a", [0.7, 0.1, 0.1, 0.1], 0.10),
        _rec("x.mcap", 4, "a", "b", [0.2, 0.6, 0.1, 0.1], 0.20),
        _rec("x.mcap", 5, "b", "b", [0.1, 0.7, 0.1, 0.1], 0.30),
        _rec("x.mcap", 6, None, "c", [0.1, 0.1, 0.7, 0.1], 0.40),
        _rec("x.mcap", 7, "c", None, latency=None),
    ]
    report = write_report(tmp_path, records, LABELS, extra={"bags": ["x.mcap"]})
    for name in ("report.json", "windows.csv", "confusion.png", "latency.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert (tmp_path / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk == report
    assert report["windows"] == 5
    assert report["windows_scored"] == 3
    assert report["windows_without_truth"] == 1
    assert report["windows_without_estimate"] == 1
    assert report["metrics"]["accuracy"] == pytest.approx(2 / 3)
    assert report["latency_s"]["n"] == 4
    assert report["latency_s"]["max"] == pytest.approx(0.4)
    assert report["extra"] == {"bags": ["x.mcap"]}
    back, labels = read_windows_csv(tmp_path / "windows.csv")
    assert labels == LABELS
    assert ([(r.end_ns, r.truth, r.label) for r in back]
            == [(r.end_ns, r.truth, r.label) for r in records])
    assert back[0].probabilities == pytest.approx(records[0].probabilities)
    assert back[4].probabilities == [] and back[4].latency_s is None


def test_agreement_matches_by_source_and_end():
    a = [_rec("x", 3, "a", "a", [1, 0, 0, 0]), _rec("x", 4, "a", "b", [0, 1, 0, 0]),
         _rec("x", 5, "a", "c", [0, 0, 1, 0]), _rec("y", 3, "a", "a", [1, 0, 0, 0])]
    shift = 0.002  # 2 ms later: still the same window
    b = [_rec("x", 3 + shift, "a", "a", [0.9, 0.1, 0, 0]),
         _rec("x", 4 + shift, "a", "c", [0, 0, 1, 0]),
         _rec("x", 5.5, "a", "c"), _rec("y", 3, "a", None)]
    r = agreement(a, b)
    assert r["matched"] == 3  # x@3, x@4, y@3; x@5 vs x@5.5 is too far apart
    assert r["unmatched_a"] == 1 and r["unmatched_b"] == 1
    assert r["compared"] == 2 and r["same_label"] == 1
    assert r["agreement"] == pytest.approx(0.5)
    assert r["estimate_only_a"] == 1
    assert r["probability_diff_max"] == pytest.approx(1.0)


def test_a_report_without_ground_truth_says_so(tmp_path):
    records = [_rec("x.mcap", 3, None, "a", [0.7, 0.1, 0.1, 0.1], 0.1),
               _rec("x.mcap", 4, None, "b", [0.2, 0.6, 0.1, 0.1], 0.1)]
    report = write_report(tmp_path, records, LABELS)
    assert report["ground_truth"] is False and report["windows_scored"] == 0
    assert report["summary"].startswith("not scored: no ground truth")
    assert "accuracy 0" not in report["summary"] and "2 estimated" in report["summary"]
    scored = write_report(tmp_path / "s", [_rec("x.mcap", 3, "a", "a", [1, 0, 0, 0], 0.1)],
                          LABELS)
    assert scored["ground_truth"] is True
    assert scored["summary"] == "accuracy 1.000, macro-F1 1.000 over 1 scored windows"
