"""Training pieces: feature extraction through the node's code, the seed
networks (shapes, a tiny batch overfitted), export parity."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from avemo_ros.audio_features import AudioFeatureConfig  # noqa: E402
from avemo_ros.face_frames import VideoFeatureConfig  # noqa: E402
from avemo_ros.media import write_media  # noqa: E402
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
