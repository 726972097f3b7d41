"""Training pieces: feature extraction through the node's code, the seed
networks (shapes, a tiny batch overfitted), export parity."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from avemo_ros.audio_features import AudioFeatureConfig  # noqa: E402
from avemo_ros.face_frames import VideoFeatureConfig  # noqa: E402
from avemo_ros.media import write_media  # noqa: E402
from avemo_ros.speech_gate import default_model_path  # noqa: E402
from training.datasets import RavdessDataset  # noqa: E402
from training.features import extract_features  # noqa: E402
from training.models import AudioCnnRnn, IntermediateFusion, Video3dCnn  # noqa: E402
from training.synthetic import render_clip  # noqa: E402
from training.trainer import TrainConfig, predict, train_classifier  # noqa: E402


def test_features_come_from_the_node_pipeline(tmp_path):
    root = tmp_path / "ds" / "Actor_01"
    root.mkdir(parents=True)
    for emotion, code in (("happy", 3), ("sad", 4)):
        frames, audio, rate = render_clip(emotion, 1, duration_s=3.6)
        write_media(root / f"01-01-0{code}-01-01-01-01.mp4", frames, 30.0, audio, rate)
    ds = RavdessDataset(tmp_path / "ds")
    clips = ds.clips()
    assert [c.label for c in clips] == ["happy", "sad"]
    fs = extract_features(clips, ds.labels, audio_cfg=AudioFeatureConfig(),
                          video_cfg=VideoFeatureConfig(), hop_s=0.5, cache_dir=tmp_path / "c",
                          workers=1)
    assert fs.audio.shape == (4, 200, 300) and fs.video.shape == (4, 20, 100, 60)
    assert fs.has_audio.all() and fs.has_face.all() and list(fs.clip) == [0, 0, 1, 1]
    assert list(fs.labels) == [2, 2, 3, 3] and list(fs.groups) == [1, 1, 1, 1]
    assert list(fs.start) == [0.0, 0.5, 0.0, 0.5]
    # Each clip's face boxes are its own: the second clip alone gives the same features.
    alone = extract_features(clips[1:], ds.labels, audio_cfg=AudioFeatureConfig(),
                             video_cfg=VideoFeatureConfig(), hop_s=0.5, workers=1)
    np.testing.assert_array_equal(alone.video, fs.video[2:])
    cached = extract_features(clips, ds.labels, audio_cfg=AudioFeatureConfig(),
                              video_cfg=VideoFeatureConfig(), hop_s=0.5, cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(cached.video, fs.video)


@pytest.mark.skipif(not default_model_path().is_file(), reason="Silero VAD weights absent: "
                    "python -m avemo_ros.tools.fetch_weights silero-vad")
def test_the_speech_gate_decides_which_windows_teach_the_audio_networks(tmp_path):
    from avemo_ros.speech_gate import SpeechGateConfig, gate_config_from
    from training.features import FeatureCache

    root = tmp_path / "ds" / "Actor_01"
    root.mkdir(parents=True)
    frames, audio, rate = render_clip("happy", 1, duration_s=3.6, intensity=2)
    write_media(root / "01-01-03-02-01-01-01.mp4", frames, 30.0, audio, rate)
    hum = 1e-3 * np.random.default_rng(0).standard_normal(audio.size).astype(np.float32)
    write_media(root / "01-01-04-02-01-01-01.mp4", frames, 30.0, hum, rate)  # nobody speaks
    ds = RavdessDataset(tmp_path / "ds")
    kw = dict(audio_cfg=AudioFeatureConfig(), video_cfg=VideoFeatureConfig(), hop_s=0.5,
              cache_dir=tmp_path / "c", workers=1)
    gate = gate_config_from(None)  # a run config's default: on
    assert gate == SpeechGateConfig() and gate_config_from({"enabled": False}) is None
    with pytest.raises(ValueError, match="unknown fields"):
        gate_config_from({"treshold": 0.4})
    fs = extract_features(ds.clips(), ds.labels, speech_gate=gate, **kw)
    assert [c.label for c in ds.clips()] == ["happy", "sad"] and list(fs.clip) == [0, 0, 1, 1]
    assert np.all(fs.speech_fraction[:2] > 0.25) and np.all(fs.speech_fraction[2:] < 0.05)
    assert list(fs.has_audio) == [True, True, False, False] and fs.has_face.all()
    plain = extract_features(ds.clips(), ds.labels, **kw)  # no gate: every window has audio
    assert plain.has_audio.all() and np.isnan(plain.speech_fraction).all()
    np.testing.assert_array_equal(plain.audio, fs.audio)  # the features are the same
    dirs = {FeatureCache(tmp_path / "c", kw["audio_cfg"], kw["video_cfg"], 0.5, True, g).directory
            for g in (None, gate, SpeechGateConfig(min_speech_fraction=0.9),
                      SpeechGateConfig(threshold=0.7))}
    assert len(dirs) == 3  # min_speech_fraction is applied at load time: one cache
    strict = extract_features(ds.clips(), ds.labels,
                              speech_gate=SpeechGateConfig(min_speech_fraction=0.99), **kw)
    assert not strict.has_audio.any()


@pytest.mark.parametrize("model,shape", [
    (AudioCnnRnn(8), (4, 1, 200, 300)),
    (Video3dCnn(8), (4, 1, 20, 100, 60)),
])
def test_shapes_and_backward(model, shape):
    logits, feats = model(torch.randn(*shape))
    assert logits.shape == (4, 8) and feats.shape == (4, 64)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_fusion_overfits_a_tiny_batch():
    rng = np.random.default_rng(0)
    fa, fv = rng.standard_normal((16, 64)), rng.standard_normal((16, 64))
    y = np.arange(16) % 8
    model = IntermediateFusion(8)
    train_classifier(model, [fa, fv], y, [fa, fv], y, 8,
                     TrainConfig(epochs=150, patience=150, batch_size=16, lr=3e-3), "fusion")
    logits, _ = predict(model, [fa, fv])
    assert (logits.argmax(1) == y).mean() == 1.0
