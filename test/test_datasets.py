"""Datasets (RAVDESS, IEMOCAP, synthetic) on small fixture trees with the real layouts and
file names, and the per-clip feature cache."""
from __future__ import annotations

import logging
import os

import av
import numpy as np
import pytest

from avemo_ros.audio_features import AudioFeatureConfig
from avemo_ros.face_frames import VideoFeatureConfig
from avemo_ros.media import read_media, write_media, write_wav
from training.datasets import (Clip, DatasetError, Fold, IemocapDataset, RavdessDataset,
                               SyntheticDataset, open_dataset, parse_ravdess_name, read_clip)
from training.datasets.iemocap import parse_evaluation_line
from training.datasets.ravdess import ravdess_folds
from training.features import FeatureCache, extract_features
from training.synthetic import render_clip

SIZE = (128, 96)  # small frames keep rendering, encoding and face detection fast
FPS = 30.0
# the 128x96 test frames hold faces about 50 px tall: below the default 64 px minimum
AUDIO, VIDEO = AudioFeatureConfig(), VideoFeatureConfig(min_face_camera_px=32)


def _render(emotion: str, actor: int, seconds: float = 3.2, statement: int = 1):
    return render_clip(emotion, actor, duration_s=seconds, size=SIZE, statement=statement)


# ----------------------------------------------------------------------------- RAVDESS

RAVDESS_TAKES = [(actor, emotion) for actor in (1, 2, 5, 9) for emotion in (3, 4)]  # happy, sad


@pytest.fixture(scope="module")
def ravdess_root(tmp_path_factory):
    """Actors 1, 2, 5 and 9, happy and sad speech takes as 01, 02 and 03 files, plus a song
    file, an unpaired video-only file and odd files."""
    root = tmp_path_factory.mktemp("RAVDESS")
    names = {3: "happy", 4: "sad"}
    for actor, code in RAVDESS_TAKES:
        frames, audio, rate = _render(names[code], actor)
        d = root / f"Actor_{actor:02d}"
        stem = f"01-{code:02d}-01-01-01-{actor:02d}"
        write_media(d / f"01-{stem}.mp4", frames, FPS, audio, rate)
        write_media(d / f"02-{stem}.mp4", frames, FPS, None, 0)
        write_wav(d / f"03-{stem}.wav", audio, rate)
    frames, audio, rate = _render("angry", 2)
    write_media(root / "Actor_02" / "02-01-05-01-01-01-02.mp4", frames, FPS, None, 0)  # no 03
    write_wav(root / "Actor_01" / "03-02-03-01-01-01-01.wav", audio, rate)  # song
    (root / "Actor_01" / "README.txt").write_text("not a clip")
    (root / "Actor_01" / "01-01-05-01-01-01-01.mp4").write_bytes(b"")  # empty
    (root / "Actor_01" / "01-01-03-01-01-01-02.mp4").write_bytes(b"x")  # actor 02 in Actor_01
    (root / "Actor_01" / "03-01-04-01-01-01-01.mp4").write_bytes(b"x")  # audio-only as mp4
    (root / "Actor_05" / "01-01-09-01-01-01-05.mp4").write_bytes(b"x")  # emotion 09
    return root


def test_ravdess_names():
    n = parse_ravdess_name("Actor_12/01-01-03-02-01-02-12.mp4")
    fields = (n.modality, n.emotion, n.intensity, n.statement, n.repetition, n.actor)
    assert fields == (1, 3, 2, 1, 2, 12)
    assert n.label == "happy" and n.stem == "01-01-03-02-01-02-12"
    assert parse_ravdess_name("03-01-03-02-01-02-12.wav").utterance == n.utterance
    for bad in ("01-01-09-01-01-01-01.mp4", "01-01-03.mp4", "a-b-c-d-e-f-g.mp4",
                "04-01-03-01-01-01-01.mp4"):
        with pytest.raises(ValueError):
            parse_ravdess_name(bad)


def test_ravdess_modalities(ravdess_root, caplog):
    caplog.set_level(logging.WARNING)
    av_ds = RavdessDataset(ravdess_root)
    clips = av_ds.clips()
    assert [c.id for c in clips] == [f"01-01-{e:02d}-01-01-01-{a:02d}" for a, e in RAVDESS_TAKES]
    assert [c.label for c in clips] == ["happy", "sad"] * 4
    assert [c.group for c in clips] == [1, 1, 2, 2, 5, 5, 9, 9]
    assert all(c.video_path == c.audio_path and c.video_path.suffix == ".mp4" for c in clips)
    assert av_ds.labels == ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust",
                            "surprised")
    assert clips[0].meta["gender"] == "male" and clips[2].meta["gender"] == "female"
    # Odd files are skipped, counted and logged.
    assert av_ds.skipped == {"not a RAVDESS name (7 two-digit fields)": 1, "empty file": 1,
                             "actor field does not match its Actor_XX folder": 1,
                             "modality 03 file with extension '.mp4'": 1,
                             "field out of range for RAVDESS": 1}
    assert "README.txt" in caplog.text and "empty file" in caplog.text

    video = RavdessDataset(ravdess_root, modality="video").clips()
    assert len(video) == 9 and all(c.audio_path is None and c.video_path.name.startswith("02-")
                                   for c in video)
    audio = RavdessDataset(ravdess_root, modality="audio").clips()
    assert len(audio) == 8 and all(c.video_path is None and c.audio_path.suffix == ".wav"
                                   for c in audio)
    songs = RavdessDataset(ravdess_root, modality="audio", channel="song").clips()
    assert [c.id for c in songs] == ["03-02-03-01-01-01-01"]
    assert len(RavdessDataset(ravdess_root, modality="audio", channel="both").clips()) == 9
    assert [c.group for c in RavdessDataset(ravdess_root, actors=[2]).clips()] == [2, 2]


def test_ravdess_pairs_video_only_and_audio_only_files(ravdess_root):
    ds = RavdessDataset(ravdess_root, modality="paired")
    clips = ds.clips()
    assert len(clips) == 8
    for c in clips:
        v, a = parse_ravdess_name(c.video_path), parse_ravdess_name(c.audio_path)
        assert (v.modality, a.modality) == (2, 3) and v.utterance == a.utterance
        assert c.label == v.label and c.group == v.actor
    assert clips[0].id == "02+03-01-03-01-01-01-01"
    assert ds.skipped["video-only file without its audio-only twin"] == 1
    media = read_clip(clips[0])
    assert media.frames.shape[1:] == (96, 128, 3) and media.sample_rate == 48000


def test_ravdess_folds_split_by_actor_only(ravdess_root):
    ds = RavdessDataset(ravdess_root)
    folds = ds.folds()
    assert [(f.name, f.test_groups, f.val_groups) for f in folds] == [
        ("fold1", (1, 2), (5,)), ("fold2", (5,), (9,)), ("fold3", (9,), ())]
    full = ravdess_folds(range(1, 25))
    assert len(full) == 6 and all(len(f.test_groups) == 4 and len(f.val_groups) == 2 for f in full)
    assert sorted(a for f in full for a in f.test_groups) == list(range(1, 25))
    for fold in folds + [Fold.explicit([5], [2])]:
        split = ds.split(fold)
        groups = [{c.group for c in part} for part in split]
        assert not (groups[0] & groups[1]) and not (groups[0] & groups[2]) \
            and not (groups[1] & groups[2])
        assert sum(len(p) for p in split) == len(ds.clips())
    train, val, test = ds.split(0)
    assert ({c.group for c in train}, {c.group for c in val}, {c.group for c in test}) == (
        {9}, {5}, {1, 2})
    train, val, test = ds.split("fold3")
    assert {c.group for c in test} == {9} and not val and {c.group for c in train} == {1, 2, 5}
    explicit = RavdessDataset(ravdess_root, test_groups=[2], val_groups=[1])
    assert [f.name for f in explicit.folds()] == ["explicit"]
    train, val, test = explicit.split(0)
    assert ({c.group for c in train}, {c.group for c in val}, {c.group for c in test}) == (
        {5, 9}, {1}, {2})
    with pytest.raises(DatasetError, match="no fold"):
        ds.fold("fold9")
    with pytest.raises(DatasetError, match="both test and validation"):
        Fold.explicit([1, 2], [2])
    with pytest.raises(DatasetError, match="leaves no training clips"):
        ds.split(Fold.explicit([1, 2], [5, 9]))


def test_bad_roots_and_options(tmp_path, ravdess_root):
    with pytest.raises(DatasetError, match="not a directory"):
        RavdessDataset(tmp_path / "nowhere").clips()
    (tmp_path / "Actor_01").mkdir()
    (tmp_path / "Actor_01" / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="no usable clips.*1 not a RAVDESS name"):
        RavdessDataset(tmp_path).clips()
    with pytest.raises(DatasetError, match="unknown dataset"):
        open_dataset("crema", tmp_path)
    with pytest.raises(DatasetError, match="unknown options"):
        open_dataset("ravdess", tmp_path, modalty="audio")
    with pytest.raises(DatasetError, match="modality"):
        open_dataset("ravdess", tmp_path, modality="audio-only")
    ds = open_dataset("ravdess", ravdess_root, modality="audio", channel="speech")
    assert isinstance(ds, RavdessDataset) and len(ds.clips()) == 8


# ----------------------------------------------------------------------------- IEMOCAP

# (utterance suffix, start, end, raw label, emotion rendered for it)
IEMOCAP_DIALOGS = {
    1: ("Ses01F_impro01", [("F000", 0.40, 3.70, "neu", "neutral"),
                           ("M000", 3.90, 6.10, "hap", "happy"),
                           ("F001", 6.30, 7.40, "exc", "happy"),
                           ("M001", 7.50, 8.60, "xxx", "calm"),
                           ("F002", 8.70, 9.80, "fru", "angry")]),
    2: ("Ses02M_script01_1", [("F000", 0.20, 3.40, "ang", "angry"),
                              ("M000", 3.50, 5.00, "sad", "sad"),
                              ("F001", 5.10, 6.00, "neu", "neutral")]),
    3: ("Ses03F_impro02", [("M000", 0.30, 3.50, "sad", "sad"),
                           ("F000", 3.60, 4.80, "sur", "surprised")]),
}


def _write_avi(path, frames: np.ndarray, fps: float, audio: np.ndarray, sr: int) -> None:
    """A DivX-style AVI: MPEG-4 part 2 video and 16-bit PCM stereo audio."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="avi") as out:
        v = out.add_stream("mpeg4", rate=int(fps))
        v.width, v.height, v.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        v.options = {"qscale": "2"}
        a = out.add_stream("pcm_s16le", rate=sr, layout="stereo")
        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            out.mux(v.encode(f))
        out.mux(v.encode(None))
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        stereo = np.repeat(pcm[:, None], 2, axis=1)
        for s in range(0, len(stereo), 1600):
            f = av.AudioFrame.from_ndarray(np.ascontiguousarray(stereo[s:s + 1600].reshape(1, -1)),
                                           format="s16", layout="stereo")
            f.sample_rate, f.pts = sr, s
            out.mux(a.encode(f))
        out.mux(a.encode(None))


def _evaluation_text(dialog: str, utterances) -> str:
    lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    for suffix, start, end, code, _ in utterances:
        lines += [f"[{start:.4f} - {end:.4f}]\t{dialog}_{suffix}\t{code}\t"
                  "[2.5000, 3.0000, 2.0000]",
                  "C-E2:\tNeutral;\t()", "C-E3:\tNeutral;\t()", "C-F1:\tNeutral;\t(calm)",
                  "A-E3:\tval 3; act 2; dom  2;\t()", ""]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def iemocap_root(tmp_path_factory):
    """Sessions 1-3: one dialog each (DivX-style avi of rendered faces + its audio),
    EmoEvaluation text in the real format, one sentence wav per utterance."""
    root = tmp_path_factory.mktemp("IEMOCAP_full_release")
    sr = 16000
    for session, (dialog, utts) in IEMOCAP_DIALOGS.items():
        total = utts[-1][2] + 0.5
        n_frames = int(round(total * FPS))
        frames = np.zeros((n_frames, SIZE[1], SIZE[0], 3), np.uint8)
        audio = np.zeros(int(round(total * sr)), np.float32)
        for k, (suffix, start, end, code, emotion) in enumerate(utts):
            f, a, rate = render_clip(emotion, session, duration_s=end - start, size=SIZE,
                                     sample_rate=sr, repetition=k + 1)
            i0 = int(round(start * FPS))
            frames[i0:i0 + len(f)] = f[:n_frames - i0]
            s0 = int(round(start * sr))
            audio[s0:s0 + len(a)] = a
            if (session, suffix) != (2, "F001"):  # one sentence wav is missing
                write_wav(root / f"Session{session}/sentences/wav/{dialog}/{dialog}_{suffix}.wav",
                          audio[s0:s0 + len(a)], sr)
        frames[frames.sum(axis=3) == 0] = 40  # background between utterances
        _write_avi(root / f"Session{session}/dialog/avi/DivX/{dialog}.avi", frames, FPS, audio, sr)
        evaluation = root / f"Session{session}/dialog/EmoEvaluation"
        evaluation.mkdir(parents=True)
        text = _evaluation_text(dialog, utts)
        if session == 3:
            text += "[1.0 - oops]\tSes03F_impro02_F009\tneu\t[2.5, 2.5, 2.5]\n"  # malformed
        (evaluation / f"{dialog}.txt").write_text(text)
        (evaluation / "Categorical").mkdir()  # real releases have these subfolders
    return root


def test_evaluation_line():
    line = "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]"
    assert parse_evaluation_line(line) == (6.2901, 8.2357, "Ses01F_impro01_F000", "neu",
                                           (2.5, 2.5, 2.5))
    assert parse_evaluation_line("C-E2:\tNeutral;\t()") is None
    assert parse_evaluation_line("% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]") is None


def test_iemocap_four_classes(iemocap_root, caplog):
    caplog.set_level(logging.INFO)
    ds = IemocapDataset(iemocap_root)
    clips = ds.clips()
    assert ds.labels == ("neutral", "happy", "sad", "angry")
    assert [(c.id, c.label, c.group) for c in clips] == [
        ("Ses01F_impro01_F000", "neutral", 1), ("Ses01F_impro01_M000", "happy", 1),
        ("Ses02M_script01_1_F000", "angry", 2), ("Ses02M_script01_1_M000", "sad", 2),
        ("Ses03F_impro02_M000", "sad", 3)]
    assert ds.dropped == {"exc": 1, "xxx": 1, "fru": 1, "sur": 1}
    assert ds.skipped == {"missing or empty sentence wav": 1, "malformed utterance line": 1}
    assert "outside the label map dropped" in caplog.text
    assert "Ses02M_script01_1_F001" in caplog.text
    c = clips[1]
    assert (c.start_s, c.end_s) == (3.9, 6.1)
    assert c.video_path == iemocap_root / "Session1/dialog/avi/DivX/Ses01F_impro01.avi"
    assert c.audio_path == (iemocap_root
                            / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M000.wav")
    assert c.meta["speaker"] == "Ses01M" and clips[0].meta["speaker"] == "Ses01F"
    assert clips[2].meta["scripted"] and c.meta["vad"] == (2.5, 3.0, 2.0)

    merged = IemocapDataset(iemocap_root, merge_excited=True)
    assert [c.label for c in merged.clips() if c.group == 1] == ["neutral", "happy", "happy"]
    assert "exc" not in merged.dropped
    three = open_dataset("iemocap", iemocap_root, classes=3)
    assert three.labels == ("sad", "angry", "neutral")
    assert [c.label for c in three.clips()] == ["neutral", "angry", "sad", "sad"]
    assert three.dropped["hap"] == 1
    with pytest.raises(DatasetError, match="merge_excited"):
        IemocapDataset(iemocap_root, classes=3, merge_excited=True)
    with pytest.raises(DatasetError, match="classes"):
        IemocapDataset(iemocap_root, classes=5)


def test_iemocap_modalities_sessions_and_folds(iemocap_root):
    audio = IemocapDataset(iemocap_root, modality="audio").clips()
    assert len(audio) == 5 and all(c.video_path is None for c in audio)
    video = IemocapDataset(iemocap_root, modality="video").clips()
    assert len(video) == 6 and all(c.audio_path is None for c in video)  # the wav-less one too
    some = IemocapDataset(iemocap_root, sessions=[1, 4])
    assert {c.group for c in some.clips()} == {1} and some.skipped["missing session folder"] == 1
    ds = IemocapDataset(iemocap_root)
    assert [(f.name, f.test_groups, f.val_groups) for f in ds.folds()] == [
        ("session1", (1,), (2,)), ("session2", (2,), (3,)), ("session3", (3,), (1,))]
    for fold in ds.folds():
        train, val, test = ds.split(fold)
        assert {c.group for c in test} == set(fold.test_groups)
        assert {c.group for c in val} == set(fold.val_groups)
        assert not {c.group for c in train} & (set(fold.test_groups) | set(fold.val_groups))


def test_iemocap_reads_the_utterance_segment_of_the_dialog(iemocap_root):
    clip = IemocapDataset(iemocap_root).clips()[1]  # [3.9, 6.1) of session 1's dialog
    media = read_clip(clip)
    assert media.frames.shape[0] == pytest.approx((6.1 - 3.9) * FPS, abs=1)
    assert media.frame_times[0] == pytest.approx(0.0, abs=1 / FPS)
    assert media.audio.shape[0] == int(round(2.2 * 16000)) and media.sample_rate == 16000
    whole = read_media(clip.video_path, audio=False)
    first = int(round(3.9 * FPS))
    diffs = [np.abs(media.frames[0].astype(int) - whole.frames[first + d].astype(int)).mean()
             for d in (-3, 0, 3)]
    assert diffs[1] < 1.0 and diffs[1] < min(diffs[0], diffs[2])


# ----------------------------------------------------------------------------- synthetic


def test_synthetic_dataset_generates_and_filters(tmp_path):
    ds = SyntheticDataset(tmp_path / "syn", actors=[3], repetitions=1, statements=(1,),
                          duration_s=1.0, workers=1)  # short: only the layout matters here
    clips = ds.clips()
    assert len(clips) == 15 and {c.group for c in clips} == {3}  # neutral has one intensity
    assert all(c.video_path == c.audio_path for c in clips)
    assert sorted(p.name for p in (tmp_path / "syn" / "Actor_03").iterdir()) == sorted(
        c.id + ".mp4" for c in clips)
    # Without generation, the clips of other settings in the folder are left out.
    (tmp_path / "syn" / "Actor_03" / "01-01-03-01-01-02-03.mp4").write_bytes(
        (tmp_path / "syn" / "Actor_03" / "01-01-03-01-01-01-03.mp4").read_bytes())
    again = SyntheticDataset(tmp_path / "syn", actors=[3], statements=(1,), generate=False)
    assert [c.id for c in again.clips()] == [c.id for c in clips]
    audio = SyntheticDataset(tmp_path / "syn", actors=[3], statements=(1,), generate=False,
                             modality="audio")
    assert all(c.video_path is None for c in audio.clips())
    with pytest.raises(DatasetError, match="modality"):
        SyntheticDataset(tmp_path / "syn", modality="paired")


# ----------------------------------------------------------------------------- features


def _cache_files(cache: FeatureCache) -> dict:
    return {p.name: p.stat().st_mtime_ns for p in cache.directory.glob("*.npz")}


def test_features_of_every_modality_and_segments(ravdess_root, iemocap_root):
    paired = RavdessDataset(ravdess_root, modality="paired").clips()[:1]
    audio_only = RavdessDataset(ravdess_root, modality="audio").clips()[:1]
    video_only = RavdessDataset(ravdess_root, modality="video").clips()[:1]
    iemocap = IemocapDataset(iemocap_root)
    utterances = iemocap.clips()[:2]  # 3.3 s and a 2.2 s one (padded to one window)
    clips = paired + audio_only + video_only + utterances
    labels = ["neutral", "happy", "sad", "angry"]
    fs = extract_features(clips, labels, audio_cfg=AUDIO, video_cfg=VIDEO, hop_s=0.25,
                          workers=1, progress=False)
    assert fs.audio.shape[1:] == AUDIO.shape and fs.video.shape[1:] == VIDEO.shape
    assert fs.audio.dtype == np.float16 and fs.video.dtype == np.float16
    per_clip = np.bincount(fs.clip, minlength=len(clips))
    assert list(per_clip) == [1, 1, 1, 2, 1]  # 3.2 s clips: windows ending at 3.0 s (and 3.25)
    np.testing.assert_array_equal(fs.has_audio, [True, True, False, True, True, True])
    np.testing.assert_array_equal(fs.has_face[[1]], [False])  # audio-only: never a face
    assert fs.has_face[[0, 2, 3, 4, 5]].all()
    assert not fs.video[1].any() and not fs.audio[2].any()
    np.testing.assert_array_equal(fs.labels, [1, 1, 1, 0, 0, 1])
    np.testing.assert_array_equal(fs.groups, [1, 1, 1, 1, 1, 1])
    np.testing.assert_allclose(fs.start, [0.0, 0.0, 0.0, 0.0, 0.25, 0.0])
    sub = fs.subset(fs.clip == 3)
    assert len(sub) == 2 and sub.video.shape[1:] == VIDEO.shape


def test_feature_cache_hits_misses_and_resumes(ravdess_root, tmp_path, caplog):
    clips = RavdessDataset(ravdess_root).clips()[:4]
    labels = list(RavdessDataset.labels)
    kw = dict(audio_cfg=AUDIO, video_cfg=VIDEO, hop_s=0.5, cache_dir=tmp_path / "cache",
              progress=False)
    caplog.set_level(logging.INFO, logger="training.features")
    # Interrupted run: only the first two clips were extracted.
    extract_features(clips[:2], labels, workers=1, **kw)
    cache = FeatureCache(tmp_path / "cache", AUDIO, VIDEO, 0.5)
    first = _cache_files(cache)
    assert len(first) == 2 and (cache.directory / "params.json").is_file()
    caplog.clear()
    fs = extract_features(clips, labels, workers=2, **kw)  # resumes: extracts the other two
    assert "2 from the cache" in caplog.text and "2 to extract" in caplog.text
    files = _cache_files(cache)
    assert len(files) == 4 and all(files[name] == t for name, t in first.items())
    assert list(np.unique(fs.clip)) == [0, 1, 2, 3] and fs.has_face.all()
    # Second run: everything from the cache, same arrays, no file rewritten.
    caplog.clear()
    again = extract_features(clips, labels, workers=2, **kw)
    assert "4 from the cache" in caplog.text and "0 to extract" in caplog.text
    assert _cache_files(cache) == files
    for name in ("audio", "video", "has_audio", "has_face", "labels", "groups", "clip", "start"):
        np.testing.assert_array_equal(getattr(again, name), getattr(fs, name))
    # The cache holds no labels: a new label order re-indexes without re-extracting.
    swapped = extract_features(clips, list(reversed(labels)), workers=1, **kw)
    np.testing.assert_array_equal(swapped.labels, len(labels) - 1 - fs.labels)
    # A changed parameter misses the cache (new directory); so does a changed clip.
    caplog.clear()
    extract_features(clips[:1], labels, workers=1,
                     **{**kw, "video_cfg": VideoFeatureConfig(margin=0.1)})
    assert "0 from the cache" in caplog.text
    assert len(list((tmp_path / "cache").glob("features-*"))) == 2
    touched = clips[1].video_path
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    caplog.clear()
    extract_features(clips, labels, workers=1, **kw)
    assert "3 from the cache" in caplog.text and "1 to extract" in caplog.text


def test_unreadable_clips_are_left_out_and_retried(ravdess_root, tmp_path, caplog):
    good = RavdessDataset(ravdess_root).clips()[0]
    bad_path = tmp_path / "Actor_01" / "01-01-04-01-01-01-01.mp4"
    bad_path.parent.mkdir()
    bad_path.write_bytes(b"\x00not a video" * 100)
    bad = Clip("bad", "sad", 1, bad_path, bad_path)
    caplog.set_level(logging.WARNING)
    kw = dict(audio_cfg=AUDIO, video_cfg=VIDEO, hop_s=0.5, cache_dir=tmp_path / "c",
              workers=1, progress=False)
    fs = extract_features([bad, good], list(RavdessDataset.labels), **kw)
    assert set(fs.clip) == {1} and "clip bad left out" in caplog.text
    assert len(list(FeatureCache(tmp_path / "c", AUDIO, VIDEO, 0.5).directory.glob("*.npz"))) == 1
    with pytest.raises(ValueError, match="no windows"):
        extract_features([bad], list(RavdessDataset.labels), **kw)
    with pytest.raises(ValueError, match="not in the label list"):
        extract_features([good], ["neutral"], **kw)
