"""Synthetic data -> features -> audio, video and fusion networks -> model bundle.

    python -m training.quickstart --data data/synthetic --out data/models/synthetic

Generates the synthetic RAVDESS-layout set when it is missing, splits by actor (train /
validation / held-out test actors, never by clip), trains the seed networks, reports the
held-out accuracy of each modality and of the fusion, and exports the bundle.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from avemo_ros.audio_features import AudioFeatureConfig
from avemo_ros.face_frames import VideoFeatureConfig

from .datasets import SyntheticDataset
from .export import write_bundle
from .features import FeatureSet, extract_features
from .models import AudioCnnRnn, IntermediateFusion, Video3dCnn, jitter
from .trainer import TrainConfig, predict, seed_everything, train_classifier

log = logging.getLogger("training.quickstart")


def split_by_actor(groups: np.ndarray, test_actors: list[int], val_actors: list[int]):
    """Boolean masks (train, val, test) that never split one actor across sets."""
    test = np.isin(groups, test_actors)
    val = np.isin(groups, val_actors)
    return ~(test | val), val, test


def evaluate(audio_model, video_model, fusion_model, fs: FeatureSet) -> dict:
    """Held-out accuracies: each modality alone, and the runtime's fused decision."""
    la, fa = predict(audio_model, [fs.audio])
    lv, fv = predict(video_model, [fs.video])
    lf, _ = predict(fusion_model, [fa, fv])
    y = fs.labels
    both = fs.has_audio & fs.has_face
    fused = np.where(both, lf.argmax(1), np.where(fs.has_face, lv.argmax(1), la.argmax(1)))

    def acc(pred, mask):
        return float((pred[mask] == y[mask]).mean()) if mask.any() else float("nan")

    return {"audio": acc(la.argmax(1), fs.has_audio), "video": acc(lv.argmax(1), fs.has_face),
            "fusion": acc(fused, fs.has_audio | fs.has_face), "windows": int(len(y)),
            "windows_with_face": int(fs.has_face.sum())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("data/synthetic"))
    ap.add_argument("--out", type=Path, default=Path("data/models/synthetic"))
    ap.add_argument("--cache", type=Path, default=Path("data/cache"))
    ap.add_argument("--actors", type=int, default=20, help="synthetic actors to generate")
    ap.add_argument("--repetitions", type=int, default=1, help="takes per utterance (RAVDESS: 2)")
    ap.add_argument("--test-actors", type=int, nargs="+", default=[19, 20])
    ap.add_argument("--val-actors", type=int, nargs="+", default=[18])
    ap.add_argument("--epochs", type=int, default=12, help="audio epochs (video: three times that)")
    ap.add_argument("--hop", type=float, default=0.5, help="window hop within a clip (s); "
                    "each epoch trains on one random window per clip")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(max(1, args.workers))
    t_start = time.perf_counter()

    dataset = SyntheticDataset(args.data, actors=args.actors, repetitions=args.repetitions,
                               seed=args.seed, workers=args.workers)
    clips = dataset.clips()
    labels = list(dataset.labels)
    audio_cfg, video_cfg = AudioFeatureConfig(), VideoFeatureConfig()
    fs = extract_features(clips, labels, audio_cfg=audio_cfg, video_cfg=video_cfg,
                          hop_s=args.hop, cache_dir=args.cache, workers=args.workers)
    t_feat = time.perf_counter()
    train, val, test = split_by_actor(fs.groups, args.test_actors, args.val_actors)
    log.info("%d windows (%d clips): train %d, val %d, test %d; face found in %.1f%%",
             len(fs.labels), len(clips), train.sum(), val.sum(), test.sum(), 100 * fs.has_face.mean())

    cfg = TrainConfig(epochs=args.epochs, seed=args.seed)
    nc = len(labels)
    seed_everything(args.seed)
    audio_model = AudioCnnRnn(nc, audio_cfg.shape)
    m_tr, m_va = train & fs.has_audio, val & fs.has_audio
    res_a = train_classifier(audio_model, [fs.audio[m_tr][:, None]], fs.labels[m_tr],
                             [fs.audio[m_va][:, None]], fs.labels[m_va], nc, cfg, "audio",
                             groups=fs.clip[m_tr])
    video_model = Video3dCnn(nc)
    m_tr, m_va = train & fs.has_face, val & fs.has_face
    video_cfg_train = TrainConfig(epochs=3 * args.epochs, lr=3e-3, patience=3 * args.epochs,
                                  cosine=True, seed=args.seed)
    res_v = train_classifier(video_model, [fs.video[m_tr][:, None]], fs.labels[m_tr],
                             [fs.video[m_va][:, None]], fs.labels[m_va], nc, video_cfg_train,
                             "video", augment=jitter, groups=fs.clip[m_tr])
    # Fusion on the frozen penultimate features of both networks.
    both = fs.has_audio & fs.has_face
    _, fa = predict(audio_model, [fs.audio[:, None]])
    _, fv = predict(video_model, [fs.video[:, None]])
    fusion_model = IntermediateFusion(nc, fa.shape[1], fv.shape[1])
    m_tr, m_va = train & both, val & both
    res_f = train_classifier(fusion_model, [fa[m_tr], fv[m_tr]], fs.labels[m_tr],
                             [fa[m_va], fv[m_va]], fs.labels[m_va], nc,
                             TrainConfig(epochs=60, patience=15, seed=args.seed), "fusion",
                             groups=fs.clip[m_tr])
    t_train = time.perf_counter()

    test_fs = fs.subset(test)
    test_fs.audio = test_fs.audio[:, None]
    test_fs.video = test_fs.video[:, None]
    metrics = evaluate(audio_model, video_model, fusion_model, test_fs)
    log.info("held-out actors %s accuracy: audio %.3f video %.3f fusion %.3f", args.test_actors,
             metrics["audio"], metrics["video"], metrics["fusion"])
    training = {
        "dataset": "synthetic (training/synthetic.py, RAVDESS layout)", "data_root": str(args.data),
        "clips": len(clips), "split": {"test_actors": args.test_actors, "val_actors": args.val_actors},
        "hyperparameters": {"audio": vars(cfg), "video": vars(video_cfg_train)}, "held_out_accuracy": metrics,
        "best_epochs": {"audio": res_a.best_epoch, "video": res_v.best_epoch, "fusion": res_f.best_epoch},
        "history": {"audio": res_a.history, "video": res_v.history, "fusion": res_f.history},
        "seconds": {"features": round(t_feat - t_start, 1), "training": round(t_train - t_feat, 1)},
    }
    manifest = write_bundle(args.out, audio_model=audio_model, video_model=video_model,
                            fusion_model=fusion_model, labels=labels, audio_cfg=audio_cfg,
                            video_cfg=video_cfg, name="avemo-synthetic", version="0.1.0",
                            training=training)
    (args.out / "report.json").write_text(json.dumps(
        {"model_id": manifest.model_id, **metrics, "seconds": training["seconds"]}, indent=2) + "\n")
    log.info("bundle %s in %s (%.0f s in all)", manifest.model_id, args.out,
             time.perf_counter() - t_start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
