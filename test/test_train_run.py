"""training.train end to end on a tiny synthetic set: configs, report, bundle, runtime."""
import json

import numpy as np
import pytest
import yaml

from avemo_ros.estimator import EmotionEstimator
from avemo_ros.manifest import load_manifest
from avemo_ros.window import windows_from_media
from training.datasets import open_dataset, read_clip
from training.train import CONFIG_DIR, ConfigError, load_config, main, run

TINY = {"actors": [1, 2, 3], "statements": [1], "duration_s": 3.2, "test_groups": [3],
        "val_groups": [2]}


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_synthetic")
    open_dataset("synthetic", root, **TINY).clips()  # renders the clips once
    return root


def write_config(path, **changes):
    cfg = {
        "name": "tiny", "description": "tiny synthetic",
        "dataset": {"name": "synthetic", **TINY},
        "preprocessing": {"audio": {"kind": "frame_features", "n_frames": 20},
                          "video": {"n_frames": 8},
                          "hop_s": 1.0},
        "networks": {"audio": "seed003_1dcnn", "video": "avemo_3dcnn",
                     "fusion": ["seed002_late_weighted", "seed003_concat_dense128"]},
        "training": {"default": {"lr": 1e-3, "weight_decay": 0.0, "epochs": 2, "patience": 2}},
        "seeds": {"audio": "003/ravdess8/audio"},
    }
    cfg.update(changes)
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_every_shipped_config_parses_and_names_known_networks():
    from training import models
    from training.seed_results import SEED_RESULTS
    configs = sorted(CONFIG_DIR.glob("*.yaml"))
    assert len(configs) >= 9
    for path in configs:
        cfg = load_config(path)
        for role in ("audio", "video"):
            if role in cfg.networks:
                models.network_class(role, cfg.networks[role])
        for name in cfg.fusions + ([cfg.networks["joint"]] if "joint" in cfg.networks else []):
            models.network_class("fusion", name)
        audio_net = cfg.networks.get("audio") or cfg.networks.get("joint")
        assert models.audio_feature_kind(audio_net) == cfg.audio.kind, path.name
        assert all(key in SEED_RESULTS for key in cfg.seeds.values()), path.name


def test_bad_config_is_refused_with_the_reason(tmp_path):
    with pytest.raises(ConfigError, match="unknown audio feature kind"):
        load_config(write_config(tmp_path / "a.yaml", preprocessing={"audio": {"kind": "mel"}}))
    with pytest.raises(ConfigError, match="missing field 'networks'"):
        (tmp_path / "b.yaml").write_text(yaml.safe_dump({"name": "x",
                                                         "dataset": {"name": "ravdess"}}))
        load_config(tmp_path / "b.yaml")
    cfg = load_config(write_config(tmp_path / "c.yaml"), ["networks.audio=seed001_cnn"])
    with pytest.raises(ConfigError, match="takes spectrogram features"):
        run(cfg, tmp_path, tmp_path / "run")


def test_run_reports_both_fusions_and_exports_a_late_fusion_bundle(tiny_root, tmp_path):
    cfg = load_config(write_config(tmp_path / "tiny.yaml"))
    report = run(cfg, tiny_root, tmp_path / "run", cache_dir=tmp_path / "cache", workers=1)
    names = [m["name"] for m in report["models"]]
    assert names == ["audio", "video", "fusion:seed002_late_weighted",
                     "fusion:seed003_concat_dense128"]
    for m in report["models"]:
        assert 0.0 <= m["window"]["accuracy"] <= 1.0
        assert np.array(m["window"]["confusion"]).sum() == report["windows"]["test"]
    assert 0.0 <= report["training"]["fusion:seed002_late_weighted"]["audio_weight"] <= 1.0
    table = (tmp_path / "run" / "comparison.md").read_text()
    assert "| audio | seed003_1dcnn |" in table and "| 64.09 |" in table
    for name in ("audio", "video", "fusion_seed002_late_weighted",
                 "fusion_seed003_concat_dense128"):
        assert (tmp_path / "run" / f"confusion_{name}.png").stat().st_size > 1000
    assert (tmp_path / "run" / "checkpoints" / "audio" / "metrics.jsonl").is_file()

    bundle = tmp_path / "run" / "bundle"
    manifest = load_manifest(bundle)
    assert manifest.audio.kind == "frame_features"
    assert [t.name for t in manifest.models["fusion"].inputs] == ["audio_logits", "video_logits"]
    # The runtime runs the late-fusion bundle on a real window of a held-out clip.
    est = EmotionEstimator(bundle, backend="onnxruntime")
    clip = open_dataset("synthetic", tiny_root, **TINY).split(0).test[0]
    media = read_clip(clip)
    window = windows_from_media(media.frames, media.frame_times, media.audio, media.sample_rate,
                                window_s=3.0, hop_s=1.0, n_frames=manifest.video.n_frames)[0]
    result = est.estimate(window)
    assert result is not None and result.modalities == 3
    assert abs(float(result.probabilities.sum()) - 1.0) < 1e-5
    w = report["training"]["fusion:seed002_late_weighted"]["audio_weight"]
    expected = w * result.audio_probabilities + (1 - w) * result.video_probabilities
    np.testing.assert_allclose(result.probabilities, expected, atol=1e-5)

    # Resume: a second run from the checkpoints trains no further and scores the same.
    again = run(cfg, tiny_root, tmp_path / "run", cache_dir=tmp_path / "cache", workers=1,
                resume=True)
    assert again["models"][0]["window"] == report["models"][0]["window"]


def test_joint_network_run_through_the_cli(tiny_root, tmp_path, capsys):
    path = write_config(tmp_path / "joint.yaml",
                        preprocessing={"audio": {"kind": "spectrogram"},
                                       "video": {"n_frames": 8},
                                       "hop_s": 1.0},
                        networks={"joint": "seed000_joint"},
                        seeds={"fusion:joint": "000/iemocap4/joint"})
    rc = main([str(path), "--data", str(tiny_root), "--out", str(tmp_path / "run"),
               "--cache", str(tmp_path / "cache"), "--workers", "1"])
    assert rc == 0
    assert "| fusion:joint | seed000_joint |" in capsys.readouterr().out
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert [m["name"] for m in report["models"]] == ["audio", "video", "fusion:joint"]
    manifest = load_manifest(tmp_path / "run" / "bundle")
    assert manifest.models["fusion"].architecture == "seed000_joint"
    assert ([t.name for t in manifest.models["fusion"].inputs]
            == ["audio_features", "video_features"])
