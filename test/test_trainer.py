"""The training loop: exact resume, refusal of foreign checkpoints, early stopping, class
weights, the metrics log, custom losses, and two-process DDP through a real torchrun."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from training.trainer import (TrainConfig, balanced_class_weights, confusion_metrics,  # noqa: E402
                              load_checkpoint, load_weights, predict, run_selftest, selftest_data,
                              shard_indices, train_classifier)

REPO = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)


class Mlp(nn.Module):
    """Small network with dropout (so resume must restore the torch random stream)."""

    architecture = "test_mlp"

    def __init__(self, n_in=8, n_classes=3, hidden=16, dropout=0.2):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.classifier = nn.Linear(hidden, n_classes)

    def forward(self, x):
        h = self.body(x)
        return self.classifier(h), h


class Interrupted(Exception):
    pass


class Noise:
    """Augmentation drawing from torch's generator; raises at call ``stop_at`` (a crash)."""

    def __init__(self, stop_at=None):
        self.calls, self.stop_at = 0, stop_at

    def __call__(self, batch):
        self.calls += 1
        if self.calls == self.stop_at:
            raise Interrupted
        return [batch[0] + 0.1 * torch.randn_like(batch[0])]


def _data(seed=0):
    xt, yt, xv, yv = selftest_data(n=120, seed=seed)
    groups = np.arange(len(yt)) // 2  # two "windows" per "clip": one of them per epoch
    return xt, yt, xv, yv, groups


def _rows(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def _strip_seconds(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_resume_after_a_crash_gives_the_same_weights(tmp_path):
    xt, yt, xv, yv, groups = _data()
    cfg = TrainConfig(epochs=5, lr=1e-2, batch_size=16, patience=5, cosine=True, grad_clip=1.0)
    args = ([xt], yt, [xv], yv, 3, cfg, "mlp")

    torch.manual_seed(1)
    ref = Mlp()
    ref_res = train_classifier(ref, *args, augment=Noise(), groups=groups,
                               out_dir=tmp_path / "ref", progress=False)

    torch.manual_seed(1)
    crashed = Mlp()
    per_epoch = -(-len(np.unique(groups)) // cfg.batch_size)
    with pytest.raises(Interrupted):  # dies in the middle of epoch 3
        train_classifier(crashed, *args, augment=Noise(stop_at=2 * per_epoch + 2),
                         groups=groups, out_dir=tmp_path / "run", progress=False)
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 2

    torch.manual_seed(99)  # a different process state must not matter
    resumed = Mlp()
    res = train_classifier(resumed, *args, augment=Noise(), groups=groups,
                           out_dir=tmp_path / "run", resume=True, progress=False)
    assert res.resumed_from_epoch == 2 and len(res.history) == 5
    for (k, a), b in zip(ref.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    assert res.best_epoch == ref_res.best_epoch and res.best_score == ref_res.best_score
    assert _strip_seconds(res.history) == _strip_seconds(ref_res.history)
    # The log of the resumed run is the uninterrupted one, epoch 1..5 once each.
    logged = _rows(tmp_path / "run" / "metrics.jsonl")
    assert _strip_seconds(logged) == _strip_seconds(ref_res.history)
    last = load_checkpoint(tmp_path / "run" / "last.pt")
    assert last["finished"] and last["epoch"] == 5

    # Resuming a finished run trains nothing more and hands back the best weights.
    again = Mlp()
    res2 = train_classifier(again, *args, groups=groups, out_dir=tmp_path / "run", resume=True,
                            progress=False)
    assert res2.history == res.history
    for a, b in zip(again.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_resume_refuses_another_config_model_or_data(tmp_path):
    xt, yt, xv, yv, _ = _data()
    cfg = TrainConfig(epochs=1, lr=1e-2, batch_size=16)
    train_classifier(Mlp(), [xt], yt, [xv], yv, 3, cfg, "mlp", out_dir=tmp_path, progress=False)

    with pytest.raises(ValueError, match=r"config differs: lr 0.01 in the checkpoint, 0.001 now"):
        train_classifier(Mlp(), [xt], yt, [xv], yv, 3,
                         TrainConfig(epochs=1, lr=1e-3, batch_size=16),
                         out_dir=tmp_path, resume=True, progress=False)
    with pytest.raises(ValueError,
                       match=r"body.0.weight: shape \[16, 8\] in the checkpoint, \[32, 8\]"):
        train_classifier(Mlp(hidden=32), [xt], yt, [xv], yv, 3, cfg, out_dir=tmp_path, resume=True,
                         progress=False)

    class Other(Mlp):
        architecture = "other"
    with pytest.raises(ValueError,
                       match="holds a Mlp .test_mlp., this model is a .*Other .other."):
        train_classifier(Other(), [xt], yt, [xv], yv, 3, cfg, out_dir=tmp_path, resume=True,
                         progress=False)
    with pytest.raises(ValueError, match="the data differ"):
        train_classifier(Mlp(), [xt[:60]], yt[:60], [xv], yv, 3, cfg, out_dir=tmp_path,
                         resume=True, progress=False)
    # More epochs (without cosine decay) is a legitimate continuation.
    res = train_classifier(Mlp(), [xt], yt, [xv], yv, 3,
                           TrainConfig(epochs=3, lr=1e-2, batch_size=16),
                           out_dir=tmp_path, resume=True, progress=False)
    assert res.resumed_from_epoch == 1 and [r["epoch"] for r in res.history] == [1, 2, 3]
    with pytest.raises(ValueError, match="resume=True needs an out_dir"):
        train_classifier(Mlp(), [xt], yt, [xv], yv, 3, cfg, resume=True)


def test_bad_inputs_are_refused():
    xt, yt, xv, yv, _ = _data()
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        train_classifier(Mlp(), [xt], yt + 1, [xv], yv, 3, TrainConfig(epochs=1))
    with pytest.raises(ValueError, match="input lengths"):
        train_classifier(Mlp(), [xt[:-1]], yt, [xv], yv, 3, TrainConfig(epochs=1))
    with pytest.raises(ValueError, match="validation set: no samples"):
        train_classifier(Mlp(), [xt], yt, [xv[:0]], yv[:0], 3, TrainConfig(epochs=1))
    with pytest.raises(ValueError, match="monitor must be one of"):
        TrainConfig(monitor="val_loss")


def test_early_stopping_keeps_the_best_weights(tmp_path):
    xt, yt, xv, yv, _ = _data()
    cfg = TrainConfig(epochs=50, lr=3e-2, batch_size=8, patience=3, monitor="val_macro_f1")
    model = Mlp(dropout=0.0)
    res = train_classifier(model, [xt], yt, [xv], yv, 3, cfg, out_dir=tmp_path, progress=False)
    scores = [r["val_macro_f1"] for r in res.history]
    assert res.stopped_early and len(res.history) == res.best_epoch + cfg.patience < cfg.epochs
    assert res.best_score == max(scores) == scores[res.best_epoch - 1]
    assert max(scores[res.best_epoch:]) <= res.best_score
    # The returned model is the best epoch's, the one in best.pt, and scores what the log says.
    best = load_weights(Mlp(dropout=0.0), tmp_path / "best.pt")
    assert best["epoch"] == res.best_epoch
    for a, b in zip(model.state_dict().values(), best["model"].values()):
        assert torch.equal(a, b)
    logits, feats = predict(model, [xv])
    counts = np.bincount(yv * 3 + logits.argmax(1), minlength=9).reshape(3, 3)
    assert confusion_metrics(counts)[1] == pytest.approx(res.best_score)
    assert feats.shape == (len(yv), 16) and feats.dtype == np.float32


def test_class_weights_rescue_a_scarce_class():
    w = balanced_class_weights(np.array([0] * 8 + [1] * 2), 3)
    np.testing.assert_allclose(w.numpy(), [10 / 16, 10 / 4, 0.0])
    assert float((w[np.array([0] * 8 + [1] * 2)]).mean()) == pytest.approx(1.0)

    # Two overlapping classes, 19:1: unweighted training mostly ignores the scarce one.
    rng = np.random.default_rng(0)
    y = (np.arange(800) % 20 == 0).astype(np.int64)
    x = (rng.standard_normal((800, 2)) + 1.5 * y[:, None]).astype(np.float32)
    yv = np.repeat([0, 1], 200)
    xv = (rng.standard_normal((400, 2)) + 1.5 * yv[:, None]).astype(np.float32)

    def recall_of_scarce(weighted):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(2, 2))
        wrapped = _Tuple(model)
        train_classifier(wrapped, [x], y, [xv], yv, 2, TrainConfig(
            epochs=15, lr=1e-2, batch_size=32, patience=15, class_weights=weighted),
            progress=False)
        logits, _ = predict(wrapped, [xv])
        return float((logits.argmax(1)[yv == 1] == 1).mean())

    unweighted, weighted = recall_of_scarce(False), recall_of_scarce(True)
    assert unweighted < 0.35 and weighted > 0.6, (unweighted, weighted)


class _Tuple(nn.Module):
    architecture = "linear"

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x), x


def test_metrics_log_and_confusion_metrics(tmp_path):
    xt, yt, xv, yv, _ = _data()
    cfg = TrainConfig(epochs=4, lr=1e-2, batch_size=16, patience=10, cosine=True)
    res = train_classifier(Mlp(), [xt], yt, [xv], yv, 3, cfg, out_dir=tmp_path, progress=False)
    rows = _rows(tmp_path / "metrics.jsonl")
    assert rows == res.history and [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert set(rows[0]) == {"epoch", "loss", "train_accuracy", "val_loss", "val_accuracy",
                            "val_macro_f1", "lr", "seconds"}
    assert rows[0]["lr"] == pytest.approx(1e-2)
    assert all(a["lr"] > b["lr"] for a, b in zip(rows, rows[1:]))
    assert rows[-1]["loss"] < rows[0]["loss"] and all(r["seconds"] > 0 for r in rows)
    assert all(0 <= r[k] <= 1 for r in rows
               for k in ("train_accuracy", "val_accuracy", "val_macro_f1"))
    # A fresh (non-resumed) run in the same directory starts the log over.
    train_classifier(Mlp(), [xt], yt, [xv], yv, 3, TrainConfig(epochs=1, batch_size=16),
                     out_dir=tmp_path, progress=False)
    assert len(_rows(tmp_path / "metrics.jsonl")) == 1

    acc, f1 = confusion_metrics(np.array([[3, 1, 0], [0, 0, 0], [0, 2, 4]]))
    assert acc == pytest.approx(0.7)
    # F1 per class: 2*3/(4+3) for class 0, 0 for class 1 (predicted, never right), 2*4/(6+4).
    assert f1 == pytest.approx((6 / 7 + 0 + 0.8) / 3)


def test_custom_loss_with_auxiliary_heads_and_dict_outputs():
    class Joint(nn.Module):
        architecture = "joint_test"

        def __init__(self):
            super().__init__()
            self.a, self.v = nn.Linear(4, 3), nn.Linear(4, 3)

        def forward(self, xa, xv):
            la, lv = self.a(xa), self.v(xv)
            return {"logits": (la + lv) / 2, "audio": la, "video": lv}

    ce = nn.CrossEntropyLoss()

    def joint_loss(out, y):
        return ce(out["logits"], y) + 0.5 * (ce(out["audio"], y) + ce(out["video"], y))

    x, y, xv, yv = selftest_data(n=96, n_in=4)
    torch.manual_seed(0)
    model = Joint()
    res = train_classifier(model, [x, x[::-1].copy()], y, [xv, xv[::-1].copy()], yv, 3,
                           TrainConfig(epochs=6, lr=2e-2, batch_size=16, patience=6), "joint",
                           loss_fn=joint_loss, progress=False)
    assert res.history[-1]["loss"] < res.history[0]["loss"]
    logits, feats = predict(model, [xv, xv[::-1].copy()], batch_size=7)
    assert logits.shape == (len(yv), 3) and feats.shape == (len(yv), 0)


def test_shards_cover_every_index_once_per_global_batch():
    order = np.random.default_rng(0).permutation(10)
    shards = [shard_indices(order, r, 4) for r in range(4)]
    assert {len(s) for s in shards} == {3}  # padded 10 -> 12: same batch count everywhere
    assert sorted(np.concatenate(shards)) == sorted(np.concatenate([order, order[:2]]))
    # Local batch i of 2 on every rank = global batch i of 8 in the epoch order.
    np.testing.assert_array_equal(np.sort(np.concatenate([s[:2] for s in shards])),
                                  np.sort(order[:8]))


_GLOO_EXIT_ABORT = "terminate called without an active exception"


def torchrun_selftest(out_dir, *args):
    """``torchrun --standalone --nproc_per_node 2 -m training.trainer --selftest out_dir``."""
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun)] if torchrun.exists() else [sys.executable, "-m", "torch.distributed.run"]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    argv = cmd + ["--standalone", "--nproc_per_node", "2", "-m", "training.trainer",
                  "--selftest", str(out_dir), *args]
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 and _GLOO_EXIT_ABORT in proc.stderr and "Traceback" not in proc.stderr:
        # A rare (about 1 in 20 CI runs) abort of one rank in gloo's threads at interpreter exit,
        # after the barrier and destroy_process_group: no Python error, training finished. Run
        # the step again once; any other failure, or the same abort twice, fails the test.
        proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=120)
    clues = [ln for ln in proc.stderr.splitlines()
             if any(w in ln for w in ("Error", "terminate", "what()", "Exception", "rror:"))]
    assert proc.returncode == 0, "\n".join(clues[:40]) + "\n...\n" + proc.stderr[-2000:]
    return proc


def test_ddp_with_two_cpu_processes_under_torchrun(tmp_path):
    proc = torchrun_selftest(tmp_path / "ddp", "--epochs", "4")
    ranks = [torch.load(tmp_path / "ddp" / f"rank{r}.pt") for r in (0, 1)]  # both finished
    assert [(r["rank"], r["world_size"]) for r in ranks] == [(0, 2), (1, 2)]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["world_size"] == 2  # rank 0's report
    for k, v in ranks[0]["model"].items():  # DDP keeps the replicas identical
        assert torch.equal(v, ranks[1]["model"][k]), k
    last = load_checkpoint(tmp_path / "ddp" / "last.pt")  # written by rank 0 alone
    assert last["world_size"] == 2 and last["epoch"] == 4 and len(last["rng"]) == 2
    assert not list((tmp_path / "ddp").glob("*.tmp"))
    rows = _rows(tmp_path / "ddp" / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4] and rows[-1]["loss"] < rows[0]["loss"]

    # One process on the same global batch of 32 follows the same trajectory (float rounding).
    single, res = run_selftest(tmp_path / "single", epochs=4, batch_size=32)
    for k, v in single.state_dict().items():
        torch.testing.assert_close(ranks[0]["model"][k], v, atol=1e-5, rtol=1e-4)
    for a, b in zip(rows, res.history):
        assert a["val_accuracy"] == b["val_accuracy"]
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    shutil.rmtree(tmp_path / "single")

    # Two ranks stopped after epoch 2 and resumed to 4 end where the straight run ended.
    torchrun_selftest(tmp_path / "split", "--epochs", "2")
    torchrun_selftest(tmp_path / "split", "--epochs", "4", "--resume")
    for r in (0, 1):
        resumed = torch.load(tmp_path / "split" / f"rank{r}.pt")["model"]
        for k, v in ranks[0]["model"].items():
            assert torch.equal(resumed[k], v), (r, k)
