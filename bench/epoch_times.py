"""One training epoch per architecture, features already cached (no extraction cost).

    scripts/rosenv.sh python bench/epoch_times.py [--samples 256] [--threads 2]

Every registered network trains for one epoch (training.trainer.train_classifier, batch
32, Adam) on ``--samples`` windows held in memory as the feature cache hands them over
(float16 arrays of the network's input shape), then predicts a validation set of a
quarter that size. The last column scales the measured time per window to a
RAVDESS-sized epoch: 1440 clips, 16 of 24 actors training (960 windows, one per clip
per epoch) and 4 validating (240). Values are random: an epoch's cost depends on
shapes, not on values. Prints a Markdown table and the machine.
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avemo_ros.audio_features import AudioFeatureConfig  # noqa: E402
from avemo_ros.face_frames import VideoFeatureConfig  # noqa: E402
from training import models  # noqa: E402
from training.export import network_input_shape  # noqa: E402
from training.trainer import TrainConfig, train_classifier  # noqa: E402

#: (role, architecture, input feature shapes per sample, the config that uses it)
CASES = [
    ("audio", "seed001_cnn", "spectrogram 200x300"),
    ("audio", "seed001_cnn_rnn", "spectrogram 200x300"),
    ("audio", "seed001_cnn_lstm", "spectrogram 200x300"),
    ("audio", "seed003_1dcnn", "frame features 180x20"),
    ("audio", "seed002_mlp", "summary features 65"),
    ("video", "avemo_3dcnn", "20 x 100x60 faces"),
    ("video", "seed003_3dcnn", "30 x 80x70 faces"),
    ("video", "seed002_frame_cnn", "10 x 48x48 faces"),
    ("fusion", "seed003_concat_dense128", "features 64+64"),
    ("fusion", "seed000_joint", "spectrogram + 20 x 100x60 faces"),
]
AUDIO = {"spectrogram 200x300": AudioFeatureConfig(),
         "frame features 180x20": AudioFeatureConfig(kind="frame_features", n_frames=20),
         "summary features 65": AudioFeatureConfig(kind="summary_features")}
VIDEO = {"20 x 100x60 faces": VideoFeatureConfig(),
         "30 x 80x70 faces": VideoFeatureConfig(n_frames=30, crop_height=80, crop_width=70),
         "10 x 48x48 faces": VideoFeatureConfig(n_frames=10, crop_height=48, crop_width=48)}


def _inputs(role: str, name: str, what: str, n: int,
            rng) -> tuple[torch.nn.Module, list[np.ndarray]]:
    def arr(shape):
        return rng.standard_normal((n, *shape)).astype(np.float16)

    if role == "audio":
        cfg = AUDIO[what]
        return (models.build_network("audio", name, 8, input_shape=cfg.shape),
                [arr(network_input_shape("audio", cfg.shape, cfg.kind)[1:])])
    if role == "video":
        cfg = VIDEO[what]
        return (models.build_network("video", name, 8, input_shape=cfg.shape),
                [arr(network_input_shape("video", cfg.shape)[1:])])
    if name == "seed000_joint":
        a, v = AudioFeatureConfig(), VideoFeatureConfig()
        net = models.build_network("fusion", name, 8, input_shape=(a.shape, v.shape))
        return net, [arr((1, *a.shape)), arr((1, *v.shape))]
    return models.build_network("fusion", name, 8), [arr((64,)), arr((64,))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--only", nargs="*", help="architectures to time (default: all)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    rows = []
    for role, name, what in CASES:
        if args.only and name not in args.only:
            continue
        net, x = _inputs(role, name, what, args.samples, rng)
        y = rng.integers(0, 8, args.samples)
        nv = max(1, args.samples // 4)
        kw = {"loss_fn": models.joint_loss} if name == "seed000_joint" else {}
        t0 = time.perf_counter()
        train_classifier(net, x, y, [a[:nv] for a in x], y[:nv], 8,
                         TrainConfig(epochs=1, batch_size=32, deterministic=False), name,
                         progress=False, **kw)
        dt = time.perf_counter() - t0
        params = sum(p.numel() for p in net.parameters())
        per_window = dt / (args.samples + nv)
        rows.append(f"| {role} | {name} | {what} | {params:,} | {dt:.1f} | "
                    f"{1e3 * per_window:.1f} | {per_window * (960 + 240):.0f} |")
        print(rows[-1], flush=True)
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), platform.processor())
    print(f"\nMachine: {cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
          f"({args.threads} threads), Python {platform.python_version()}")
    print(f"One epoch = {args.samples} training windows (batch 32, backward) + "
          f"{args.samples // 4} validation windows (forward).\n")
    print("| role | architecture | input | parameters | measured epoch (s) | ms per window "
          "| RAVDESS-sized epoch (s) |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
