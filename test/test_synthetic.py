"""The synthetic RAVDESS-style dataset: determinism, naming, faces and cue structure."""
from __future__ import annotations

import os
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from avemo_ros.face_frames import resolve_cascade
from training.synthetic import (LABELS, audio_group, generate_dataset, make_actor, ravdess_name,
                                render_clip, video_group)

ACTORS = (1, 2)  # one male, one female
DURATION_S = 2.4
_CASCADE = cv2.CascadeClassifier(resolve_cascade())  # pip's cv2.data or apt's opencv-data


def _intensity(emotion: str) -> int:
    """Strong intensity (the harder case for detection) except for neutral, as in RAVDESS."""
    return 1 if emotion == "neutral" else 2


def _median_pitch(audio: np.ndarray, sr: int) -> float:
    """Median autocorrelation pitch (Hz) over the loud 25 ms frames."""
    x = audio[:: sr // 16000] if sr % 16000 == 0 else audio
    rate = 16000 if sr % 16000 == 0 else sr
    n, hop = int(0.04 * rate), int(0.01 * rate)
    starts = np.arange(0, x.size - n, hop)
    frames = x[starts[:, None] + np.arange(n)] * np.hanning(n)
    energy = np.sqrt((frames ** 2).mean(axis=1))
    lo, hi = int(rate / 500), int(rate / 70)
    pitches = []
    for fr in frames[energy > 0.3 * energy.max()]:
        ac = np.correlate(fr, fr, "full")[n - 1:]
        k = lo + int(np.argmax(ac[lo:hi]))
        if ac[k] > 0.3 * ac[0]:
            pitches.append(rate / k)
    return float(np.median(pitches))


_REGIONS = {  # (top, bottom, left, right) as fractions of the detected face box
    "mouth": (0.72, 0.95, 0.3, 0.7),
    "corners": (0.65, 0.8, 0.25, 0.75),
    "brows": (0.1, 0.3, 0.15, 0.85),
}


def _face_stats(frames: np.ndarray) -> dict:
    """Haar detection rate and mean face-region statistics over every second frame.

    Region darkness is the face-box mean minus the region mean; "eyes" is the contrast
    (standard deviation) of the eye band.
    """
    values: dict = {k: [] for k in (*_REGIONS, "eyes")}
    hits, total = 0, 0
    for rgb in frames[::2]:
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        found = _CASCADE.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(40, 40))
        total += 1
        if len(found) == 0:
            continue
        hits += 1
        x, y, w, h = max(found, key=lambda r: r[2] * r[3])
        face = grey[y:y + h, x:x + w].astype(np.float64)
        for key, (top, bottom, left, right) in _REGIONS.items():
            region = face[int(top * h):int(bottom * h), int(left * w):int(right * w)]
            values[key].append(face.mean() - region.mean())
        values["eyes"].append(face[int(0.2 * h):int(0.5 * h), int(0.1 * w):int(0.9 * w)].std())
    stats = {k: float(np.mean(v)) for k, v in values.items()}
    stats["rate"] = hits / total
    return stats


@pytest.fixture(scope="module")
def clip_stats() -> dict:
    """Per (emotion, actor): face statistics, pitch relative to the actor's base, level."""
    out = {}
    for emotion in LABELS:
        for actor in ACTORS:
            frames, audio, sr = render_clip(emotion, actor, duration_s=DURATION_S,
                                            intensity=_intensity(emotion))
            stats = _face_stats(frames)
            stats["pitch"] = _median_pitch(audio, sr) / make_actor(actor).f0
            voiced = np.abs(audio) > 0.1 * np.abs(audio).max()
            stats["level_db"] = 20 * np.log10(np.sqrt(np.mean(audio[voiced] ** 2)))
            out[emotion, actor] = stats
    return out


def test_groups_follow_the_designed_confusions():
    assert LABELS == ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust",
                      "surprised")
    for a, b in (("neutral", "calm"), ("happy", "surprised"), ("angry", "disgust")):
        assert audio_group(a) == audio_group(b)
    assert len({audio_group(e) for e in LABELS}) == 5
    for a, b in (("neutral", "sad"), ("calm", "fearful"), ("surprised", "angry")):
        assert video_group(a) == video_group(b)
    assert len({video_group(e) for e in LABELS}) == 5
    # No two emotions share both styles: fused, all eight are separable.
    assert len({(audio_group(e), video_group(e)) for e in LABELS}) == 8


def test_render_is_deterministic_and_well_formed():
    a = render_clip("happy", 3, duration_s=1.0, seed=5, intensity=2, statement=2)
    b = render_clip("happy", 3, duration_s=1.0, seed=5, intensity=2, statement=2)
    frames, audio, sr = a
    assert frames.shape == (30, 240, 320, 3) and frames.dtype == np.uint8
    assert audio.shape == (48000,) and audio.dtype == np.float32 and sr == 48000
    assert np.abs(audio).max() <= 1.0
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    c = render_clip("happy", 3, duration_s=1.0, seed=5, intensity=2, statement=2, repetition=2)
    assert not np.array_equal(a[1], c[1])
    small = render_clip("sad", 4, duration_s=0.5, fps=25.0, size=(160, 120), sample_rate=16000)
    assert small[0].shape == (12, 120, 160, 3) and small[1].shape == (8000,) and small[2] == 16000


def test_render_rejects_bad_arguments():
    with pytest.raises(ValueError):
        render_clip("bored", 1)
    with pytest.raises(ValueError):
        render_clip("happy", 1, intensity=3)
    with pytest.raises(ValueError):
        render_clip("happy", 0)


def test_dataset_uses_ravdess_names_and_is_idempotent(tmp_path):
    paths = generate_dataset(tmp_path, actors=[1, 2], repetitions=1, statements=(2,), workers=1,
                             progress=False, duration_s=0.4)
    expected = set()
    for actor in (1, 2):
        for code, emotion in enumerate(LABELS, start=1):
            for intensity in ((1,) if emotion == "neutral" else (1, 2)):
                name = f"01-01-{code:02d}-{intensity:02d}-02-01-{actor:02d}.mp4"
                assert ravdess_name(emotion, intensity, 2, 1, actor) == name
                expected.add(f"Actor_{actor:02d}/{name}")
    found = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert found == expected
    assert {p.relative_to(tmp_path).as_posix() for p in paths} == expected
    with av.open(str(paths[0])) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio[0].codec_context.name == "aac"
    # Idempotent: existing files are kept, an empty one is rendered again (in a worker pool).
    mtimes = {p: os.stat(p).st_mtime_ns for p in paths}
    broken = Path(paths[3])
    broken.write_bytes(b"")
    again = generate_dataset(tmp_path, actors=[1, 2], repetitions=1, statements=(2,), workers=2,
                             progress=False, duration_s=0.4)
    assert again == paths
    assert broken.stat().st_size > 0
    assert all(os.stat(p).st_mtime_ns == t for p, t in mtimes.items() if p != broken)


@pytest.mark.parametrize("emotion", LABELS)
def test_haar_finds_the_face(clip_stats, emotion):
    for actor in ACTORS:
        assert clip_stats[emotion, actor]["rate"] >= 0.9, (emotion, actor)


def _pairs():
    return [(a, b) for i, a in enumerate(LABELS) for b in LABELS[i + 1:]]


def test_audio_cues_confuse_only_the_designed_pairs(clip_stats):
    def mean(e, key):
        return np.mean([clip_stats[e, a][key] for a in ACTORS])

    assert mean("neutral", "pitch") == pytest.approx(1.0, abs=0.08)
    for a, b in _pairs():
        d_pitch = abs(mean(a, "pitch") - mean(b, "pitch"))
        d_level = abs(mean(a, "level_db") - mean(b, "level_db"))
        if audio_group(a) == audio_group(b):
            assert d_pitch < 0.08 and d_level < 3.0, (a, b, d_pitch, d_level)
        else:
            assert d_pitch > 0.15 or d_level > 6.0, (a, b, d_pitch, d_level)


def test_video_cues_confuse_only_the_designed_pairs(clip_stats):
    keys = (*_REGIONS, "eyes")

    def largest_delta(a, b):  # paired by actor: actors differ far more than expressions
        return max(abs(np.mean([clip_stats[a, act][k] - clip_stats[b, act][k] for act in ACTORS]))
                   for k in keys)

    for a, b in _pairs():
        if video_group(a) == video_group(b):
            assert largest_delta(a, b) < 2.0, (a, b)
        else:
            assert largest_delta(a, b) > 3.5, (a, b)
