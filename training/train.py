"""Train the networks a config names on a dataset, evaluate them, export the bundle.

    python -m training.train training/configs/seed003_ravdess.yaml --data /path/to/RAVDESS \\
        --out runs/seed003 [--fold 0] [--resume] [--cache data/cache]
    torchrun --nproc_per_node 4 -m training.train CONFIG --data ... --out ...   # DDP

One config (``training/configs/*.yaml``) fixes the dataset, classes, preprocessing,
networks and hyper-parameters of one seed paper's table row, or of a fine-tuning run
(``initial_weights``: see :mod:`training.initial_weights`). The run directory gets
checkpoints and ``metrics.jsonl`` per network (resumable), ``report.json``,
``comparison.md`` (ours next to the paper's number for the same setting), one confusion
PNG per model, and the bundle (``bundle/``: ONNX + manifest; all three networks, or a
video network alone) the nodes load.
"""
from __future__ import annotations

import argparse
import functools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
import yaml

from avemo_ros.audio_features import AudioFeatureConfig
from avemo_ros.face_frames import VideoFeatureConfig
from avemo_ros.fusion_rule import LOGITS, combine_batch, fit_late_fusion_weight, fusion_source
from avemo_ros.speech_gate import SpeechGateConfig, SpeechGateError, gate_config_from, gate_record

from . import models as nets
from .datasets import DatasetError, open_dataset
from .export import network_input_shape, write_bundle
from .features import FeatureSet, extract_features
from .fer_import import write_video_bundle
from .initial_weights import InitialWeightsError, check_initial_weights, initial_weights
from .report import ModelScore, score_model, write_training_report
from .trainer import (TrainConfig, balanced_class_weights, distributed_context, predict,
                      seed_everything, shutdown_distributed, train_classifier)

log = logging.getLogger("training.train")

CONFIG_DIR = Path(__file__).parent / "configs"


class ConfigError(ValueError):
    """A training config that cannot be run, with the reason."""


@dataclass
class RunConfig:
    """A parsed training config (see ``training/configs/README.md`` for the fields)."""

    name: str
    description: str
    dataset: dict
    audio: AudioFeatureConfig
    video: VideoFeatureConfig
    hop_s: float
    networks: dict  # role -> architecture name (audio, video, fusion list, joint)
    training: dict  # role -> TrainConfig fields
    seeds: dict = field(default_factory=dict)  # model name -> seed_results key
    export: bool = True
    raw: dict = field(default_factory=dict)
    initial_weights: dict = field(default_factory=dict)  # role -> a known name or a file
    speech_gate: Optional[SpeechGateConfig] = None  # which windows the audio nets learn from

    @property
    def fusions(self) -> list[str]:
        f = self.networks.get("fusion", [])
        return [f] if isinstance(f, str) else list(f)


def load_config(path: Path | str, overrides: Sequence[str] = ()) -> RunConfig:
    """Read a YAML config; ``overrides`` are ``dotted.key=value`` strings (YAML values)."""
    path = Path(path)
    if not path.is_file() and (CONFIG_DIR / path).is_file():
        path = CONFIG_DIR / path
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read config {path}: {e}") from None
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} is not key=value")
        node = raw
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value)
    try:
        pre = raw.get("preprocessing", {})
        networks = raw["networks"]
        if not ({"audio", "video", "joint"} & set(networks)):
            raise ConfigError(f"{path.name}: networks must name audio, video or joint")
        initial = check_initial_weights(raw.get("initial_weights") or {}, networks, path.name)
        return RunConfig(
            name=raw["name"], description=raw.get("description", ""), dataset=dict(raw["dataset"]),
            audio=AudioFeatureConfig(**pre.get("audio", {})),
            video=VideoFeatureConfig(**pre.get("video", {})),
            hop_s=float(pre.get("hop_s", 0.5)), networks=dict(networks),
            training=dict(raw.get("training", {})), seeds=dict(raw.get("seeds", {})),
            export=bool(raw.get("export", True)), raw=raw, initial_weights=initial,
            speech_gate=gate_config_from(pre.get("speech_gate")))
    except KeyError as e:
        raise ConfigError(f"{path.name}: missing field {e}") from None
    except (TypeError, ValueError) as e:  # InitialWeightsError too
        raise ConfigError(f"{path.name}: {e}") from None


def train_config(cfg: RunConfig, role: str, seed: int, epochs_scale: float) -> TrainConfig:
    """TrainConfig for one network: seed defaults, then the config's ``training.<role>``."""
    fields = dict(cfg.training.get("default", {}))
    fields.update(cfg.training.get(role, {}))
    fields.pop("augment", None)
    tc = TrainConfig(**{**fields, "seed": seed})
    if epochs_scale != 1.0:
        tc.epochs = max(1, int(round(tc.epochs * epochs_scale)))
        tc.patience = max(1, int(round(tc.patience * epochs_scale)))
    return tc


def _augment(cfg: RunConfig, role: str):
    name = cfg.training.get(role, {}).get("augment")
    if name is None:
        return None
    if name == "jitter":
        return nets.jitter
    raise ConfigError(f"unknown augmentation {name!r} for {role}")


def modality_inputs(fs: FeatureSet, cfg: RunConfig) -> tuple[np.ndarray, np.ndarray]:
    """The feature arrays shaped as the networks take them (batch first)."""
    a_shape = network_input_shape("audio", cfg.audio.shape, cfg.audio.kind)
    a = fs.audio.reshape(len(fs.audio), *a_shape[1:])
    v = fs.video.reshape(len(fs.video), *network_input_shape("video", cfg.video.shape)[1:])
    return a, v


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class Splits:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _split_masks(fs: FeatureSet, clip_split: dict[int, str]) -> Splits:
    which = np.array([clip_split[int(c)] for c in fs.clip])
    return Splits(which == "train", which == "val", which == "test")


def _train_one(model, role: str, x: list[np.ndarray], fs: FeatureSet, masks: Splits,
               usable: np.ndarray, n_classes: int, tc: TrainConfig, run_dir: Path, resume: bool,
               **kw):
    """Train on the usable training windows, validate on the usable validation windows."""
    tr, va = masks.train & usable, masks.val & usable
    if not tr.any():
        raise ConfigError(f"no training windows for {role} (check the split and the modality)")
    res = train_classifier(model, [a[tr] for a in x], fs.labels[tr], [a[va] for a in x],
                           fs.labels[va], n_classes, tc, role, groups=fs.clip[tr],
                           out_dir=run_dir / "checkpoints" / role, resume=resume, **kw)
    log.info("%s: best epoch %d, validation accuracy %.3f", role, res.best_epoch,
             res.best_val_accuracy)
    return res


def run(cfg: RunConfig, data_root: Path, run_dir: Path, *, cache_dir: Optional[Path] = None,
        fold: Optional[str | int] = None, resume: bool = False, workers: int = 2, seed: int = 0,
        epochs_scale: float = 1.0, bundle_dir: Optional[Path] = None) -> dict:
    """Train, evaluate and export as ``cfg`` says; returns the report dict.

    The bundle goes to ``bundle_dir`` (default ``run_dir/bundle``).
    """
    t0 = time.perf_counter()
    audio_net = cfg.networks.get("audio") or cfg.networks.get("joint")
    if audio_net and nets.audio_feature_kind(audio_net) != cfg.audio.kind:
        raise ConfigError(f"{cfg.name}: {audio_net} takes {nets.audio_feature_kind(audio_net)} "
                          f"features but preprocessing.audio.kind is {cfg.audio.kind}")
    dist = distributed_context()
    run_dir = Path(run_dir)
    ds_opts = {k: v for k, v in cfg.dataset.items() if k not in ("name", "fold")}
    dataset = open_dataset(cfg.dataset["name"], data_root, **ds_opts)
    fold = cfg.dataset.get("fold", 0) if fold is None else fold
    train_clips, val_clips, test_clips = dataset.split(fold)
    clips = list(train_clips) + list(val_clips) + list(test_clips)
    split_names = (["train"] * len(train_clips) + ["val"] * len(val_clips)
                   + ["test"] * len(test_clips))
    clip_split = dict(enumerate(split_names))
    labels = list(dataset.labels)
    log.info("%s: %d clips (train %d, val %d, test %d), %d classes %s", dataset.name, len(clips),
             len(train_clips), len(val_clips), len(test_clips), len(labels), labels)

    # Rank 0 extracts; the other ranks then read the same cache.
    if dist.distributed and not dist.is_main:
        torch.distributed.barrier()
    fs = extract_features(clips, labels, audio_cfg=cfg.audio, video_cfg=cfg.video, hop_s=cfg.hop_s,
                          cache_dir=cache_dir, workers=workers if dist.is_main else 1,
                          progress=dist.is_main, speech_gate=cfg.speech_gate)
    if dist.distributed and dist.is_main:
        torch.distributed.barrier()
    t_feat = time.perf_counter()
    masks = _split_masks(fs, clip_split)
    xa, xv = modality_inputs(fs, cfg)
    both = fs.has_audio & fs.has_face
    nc = len(labels)
    seed_everything(seed)
    trained: dict[str, Any] = {}
    results: dict[str, Any] = {}

    if "joint" in cfg.networks:
        joint = nets.build_network("fusion", cfg.networks["joint"], nc,
                                   input_shape=(cfg.audio.shape, cfg.video.shape))
        tc = train_config(cfg, "joint", seed, epochs_scale)
        weights = (balanced_class_weights(fs.labels[masks.train & both], nc)
                   if tc.class_weights else None)
        results["joint"] = _train_one(joint, "joint", [xa, xv], fs, masks, both, nc, tc, run_dir,
                                      resume, augment=_augment(cfg, "joint"),
                                      loss_fn=functools.partial(nets.joint_loss,
                                                                class_weights=weights))
        trained.update(audio=joint.audio_net, video=joint.video_net,
                       **{"fusion:joint": joint.fusion_net})
    for role, x, usable, shape in (("audio", xa, fs.has_audio, cfg.audio.shape),
                                   ("video", xv, fs.has_face, cfg.video.shape)):
        if role not in cfg.networks:
            continue
        try:
            start = initial_weights(cfg, role, labels)
        except InitialWeightsError as e:
            raise ConfigError(str(e)) from None
        model = nets.build_network(role, cfg.networks[role], nc, input_shape=shape, **start)
        tc = train_config(cfg, role, seed, epochs_scale)
        results[role] = _train_one(model, role, [x], fs, masks, usable, nc, tc, run_dir, resume,
                                   augment=_augment(cfg, role))
        trained[role] = model

    outputs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for role, x in (("audio", xa), ("video", xv)):
        if role in trained:
            outputs[role] = predict(trained[role], [x])  # (logits, features) for every window
    for name in cfg.fusions:
        if not {"audio", "video"} <= set(outputs):
            raise ConfigError("fusion needs both an audio and a video network")
        key = f"fusion:{name}"
        la, fa = outputs["audio"]
        lv, fv = outputs["video"]
        # late fusion: fitted, not trained
        if fusion_source(nets.network_class("fusion", name)) == LOGITS:
            va = masks.val & both
            w = fit_late_fusion_weight(_softmax(la[va]), _softmax(lv[va]), fs.labels[va])
            trained[key] = nets.build_network("fusion", name, nc, weight=w)
            results[key] = {"audio_weight": float(w)}
            log.info("late fusion: audio weight %.2f fitted on %d validation windows", w,
                     int(va.sum()))
        else:
            model = nets.build_network("fusion", name, nc, audio_dim=fa.shape[1],
                                       video_dim=fv.shape[1])
            tc = train_config(cfg, "fusion", seed, epochs_scale)
            results[key] = _train_one(model, key.replace(":", "_"), [fa, fv], fs, masks, both,
                                      nc, tc, run_dir, resume)
            trained[key] = model
    t_train = time.perf_counter()
    if not dist.is_main:
        return {}

    scores = evaluate(trained, outputs, fs, masks.test, labels, cfg)
    extra = {
        "config": cfg.raw, "dataset": {"name": dataset.name, "root": str(data_root), "fold": fold,
                                       "clips": {"train": len(train_clips), "val": len(val_clips),
                                                 "test": len(test_clips)}},
        "windows": {"all": int(len(fs.labels)), "test": int(masks.test.sum()),
                    "test_with_face": int((masks.test & fs.has_face).sum()),
                    "test_with_audio": int((masks.test & fs.has_audio).sum())},
        "training": {k: _result_dict(v) for k, v in results.items()},
        "seconds": {"features": round(t_feat - t0, 1), "training": round(t_train - t_feat, 1)},
        "world_size": dist.world_size,
    }
    has_fusion = any(k.startswith("fusion:") for k in trained)
    bundle_dir = Path(bundle_dir) if bundle_dir is not None else run_dir / "bundle"
    bundle_training = {"config": cfg.name, "dataset": dataset.name, "fold": fold,
                       "speech_gate": gate_record(cfg.speech_gate),
                       "held_out_window_accuracy": {s.name: s.window.accuracy for s in scores}}
    if cfg.initial_weights:
        bundle_training["initial_weights"] = {r: str(v) for r, v in cfg.initial_weights.items()}
    if cfg.export and set(trained) == {"video"}:  # a video network alone: video-only bundle
        manifest = write_video_bundle(bundle_dir, trained["video"], labels, cfg.video,
                                      name=f"avemo-{cfg.name}", version="0.1.0",
                                      training=bundle_training)
        extra["bundle"] = {"dir": str(bundle_dir), "model_id": manifest.model_id,
                           "roles": ["video"]}
    elif cfg.export and {"audio", "video"} <= set(trained) and has_fusion:
        fusion_key = next(k for k in trained if k.startswith("fusion:"))
        manifest = write_bundle(bundle_dir, audio_model=trained["audio"],
                                video_model=trained["video"], fusion_model=trained[fusion_key],
                                labels=labels, audio_cfg=cfg.audio, video_cfg=cfg.video,
                                name=f"avemo-{cfg.name}", version="0.1.0",
                                training=bundle_training)
        extra["bundle"] = {"dir": str(bundle_dir), "model_id": manifest.model_id,
                           "fusion": fusion_key}
    else:
        log.info("no bundle written: it needs audio, video and a fusion network, or a video "
                 "network alone (or export: false)")
    report = write_training_report(run_dir, scores, setting=cfg.description or cfg.name,
                                   extra=extra)
    log.info("run %s done in %.0f s; report in %s", cfg.name, time.perf_counter() - t0, run_dir)
    return report


def _result_dict(v) -> dict:
    if isinstance(v, dict):
        return v
    return {"best_epoch": v.best_epoch, "best_val_accuracy": v.best_val_accuracy,
            "epochs_run": len(v.history)}


def evaluate(trained: dict, outputs: dict, fs: FeatureSet, test: np.ndarray, labels: list[str],
             cfg: RunConfig) -> list[ModelScore]:
    """Held-out scores: each modality on its usable windows, each fusion as the node decides.

    A fusion is scored on every window with at least one modality, combined by the
    runtime's rule (``avemo_ros.fusion_rule.combine_batch``): both present, the fusion
    network; one present, that modality's own probabilities.
    """
    scores = []
    probs = {role: _softmax(outputs[role][0]) for role in outputs}
    for role, usable in (("audio", fs.has_audio), ("video", fs.has_face)):
        if role in probs:
            m = test & usable
            scores.append(score_model(role, _arch(trained[role]), probs[role][m], fs.labels[m],
                                      fs.clip[m], labels, cfg.seeds.get(role)))
    for key, model in trained.items():
        if not key.startswith("fusion:"):
            continue
        la, fa = outputs["audio"]
        lv, fv = outputs["video"]
        a_in, v_in = (la, lv) if fusion_source(model) == LOGITS else (fa, fv)
        fused, _ = predict(model, [a_in, v_in])
        p = combine_batch(probs["audio"], probs["video"], _softmax(fused), fs.has_audio,
                          fs.has_face)
        m = test & (fs.has_audio | fs.has_face)
        scores.append(score_model(key, _arch(model), p[m], fs.labels[m], fs.clip[m], labels,
                                  cfg.seeds.get(key)))
    return scores


def _arch(model) -> str:
    return getattr(model, "architecture", type(model).__name__)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config", help="YAML config (a path, or a name in training/configs/)")
    ap.add_argument("--data", type=Path, required=True,
                    help="dataset root (RAVDESS Actor_XX folders, IEMOCAP Session1..5, or the "
                    "synthetic set's folder)")
    ap.add_argument("--out", type=Path, required=True, help="run directory")
    ap.add_argument("--bundle", type=Path, default=None,
                    help="where the model bundle goes (default: OUT/bundle)")
    ap.add_argument("--cache", type=Path, default=Path("data/cache"),
                    help="feature cache directory")
    ap.add_argument("--fold", default=None, help="fold name or index (default: the config's)")
    ap.add_argument("--resume", action="store_true", help="continue from the run's checkpoints")
    ap.add_argument("--workers", type=int, default=2, help="feature-extraction processes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs-scale", type=float, default=1.0,
                    help="multiply every epoch count (and patience), e.g. 0.1 for a smoke run")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config field, e.g. --set training.audio.lr=3e-4")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as e:
        log.error("%s", e)
        return 2
    fold = int(args.fold) if args.fold is not None and str(args.fold).isdigit() else args.fold
    try:
        report = run(cfg, args.data, args.out, cache_dir=args.cache, fold=fold, resume=args.resume,
                     workers=args.workers, seed=args.seed, epochs_scale=args.epochs_scale,
                     bundle_dir=args.bundle)
    except (ConfigError, DatasetError, SpeechGateError) as e:
        log.error("%s", e)
        return 2
    finally:
        shutdown_distributed()
    if report:
        print((args.out / "comparison.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
