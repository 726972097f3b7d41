"""Round trips and error handling of avemo_ros.media."""
from __future__ import annotations

import numpy as np
import pytest

from avemo_ros.media import MediaClip, MediaError, read_av, read_media, write_media, write_wav


def _frames(n: int = 48, h: int = 64, w: int = 96) -> np.ndarray:
    frames = np.full((n, h, w, 3), 60, np.uint8)
    for i in range(n):
        x = 4 + i % (w - 24)
        frames[i, 20:40, x:x + 20] = (220, 180, 40)
    return frames


def _tone(freq: float, seconds: float, sr: int, amp: float = 0.4) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.argmax(spec) * sr / x.size)


def test_mp4_round_trip(tmp_path):
    fps, sr = 25.0, 16000
    frames = _frames()
    audio = _tone(440.0, frames.shape[0] / fps, sr)
    path = tmp_path / "clip.mp4"
    write_media(path, frames, fps, audio, sr)
    clip = read_media(path)
    assert isinstance(clip, MediaClip)
    assert clip.frames.shape == frames.shape
    assert clip.frames.dtype == np.uint8
    assert clip.frame_times.shape == (frames.shape[0],)
    assert clip.frame_times[0] == pytest.approx(0.0, abs=1e-6)
    assert clip.fps == pytest.approx(fps, rel=1e-3)
    assert np.abs(clip.frames.astype(int) - frames.astype(int)).mean() < 6.0
    assert clip.sample_rate == sr
    assert clip.audio.ndim == 2 and clip.audio.shape[1] == 1
    assert clip.audio.dtype == np.float32
    assert abs(clip.audio.shape[0] - audio.size) / sr < 0.05
    assert _peak_hz(clip.audio[:, 0], sr) == pytest.approx(440.0, abs=3.0)
    assert clip.duration == pytest.approx(frames.shape[0] / fps, abs=0.05)
    assert clip.path == str(path)


def test_stereo_and_stream_selection(tmp_path):
    sr = 48000
    stereo = np.stack([_tone(300.0, 1.0, sr), _tone(1200.0, 1.0, sr)], axis=1)
    path = tmp_path / "stereo.mp4"
    write_media(path, _frames(30), 30.0, stereo, sr)
    clip = read_media(path, video=False)
    assert clip.frames.shape == (0, 0, 0, 3)
    assert clip.audio.shape[1] == 2
    assert _peak_hz(clip.audio[:, 0], sr) == pytest.approx(300.0, abs=3.0)
    assert _peak_hz(clip.audio[:, 1], sr) == pytest.approx(1200.0, abs=3.0)
    clip = read_media(path, audio=False)
    assert clip.frames.shape[0] == 30
    assert clip.audio.shape == (0, 1) and clip.sample_rate == 0


def test_video_only_mp4(tmp_path):
    path = tmp_path / "silent.mp4"
    write_media(path, _frames(10), 30.0, None, 0)
    clip = read_media(path)
    assert clip.frames.shape[0] == 10
    assert clip.audio.shape == (0, 1) and clip.sample_rate == 0


def test_wav_round_trip(tmp_path):
    sr = 22050
    audio = _tone(1000.0, 0.5, sr, amp=0.7)
    path = tmp_path / "tone.wav"
    write_wav(path, audio, sr)
    clip = read_media(path)
    assert clip.frames.shape == (0, 0, 0, 3)
    assert clip.sample_rate == sr
    assert clip.audio.shape == (audio.size, 1)
    assert np.abs(clip.audio[:, 0] - audio).max() < 2.0 / 32767
    assert clip.duration == pytest.approx(0.5, abs=1e-3)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(MediaError, match="missing.mp4"):
        read_media(tmp_path / "missing.mp4")
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(b"\x00\x01not a media file" * 64)
    with pytest.raises(MediaError, match="corrupt.mp4"):
        read_media(bad)
    assert issubclass(MediaError, ValueError)


def test_write_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError):
        write_media(tmp_path / "odd.mp4", np.zeros((2, 15, 16, 3), np.uint8), 30.0, None, 0)
    with pytest.raises(ValueError):
        write_media(tmp_path / "empty.mp4", None, 30.0, None, 0)


def test_encoding_is_repeatable(tmp_path):
    frames = _frames(40)
    audio = _tone(220.0, 40 / 25.0, 16000)
    digests = set()
    for i in range(3):
        path = tmp_path / f"take{i}.mp4"
        write_media(path, frames, 25.0, audio, 16000)
        digests.add(path.read_bytes())
    assert len(digests) == 1


def _indexed_clip(tmp_path, seconds: int = 4, fps: float = 30.0, sr: int = 16000):
    """An mp4 whose frame i has grey level 4 * i, and whose audio is a tone of
    300 + 200 * s Hz during second s."""
    n = int(seconds * fps)
    frames = np.zeros((n, 64, 64, 3), np.uint8)
    frames[:] = (4 * np.arange(n, dtype=np.uint8))[:, None, None, None]
    audio = np.concatenate([_tone(300.0 + 200.0 * s, 1.0, sr) for s in range(seconds)])
    path = tmp_path / "indexed.mp4"
    write_media(path, frames, fps, audio, sr)
    return path, frames, audio


def test_segment_of_an_mp4(tmp_path):
    path, frames, audio = _indexed_clip(tmp_path)
    clip = read_media(path, start_s=1.0, end_s=2.0)
    assert clip.frames.shape == (30, 64, 64, 3)
    assert clip.frame_times[0] == pytest.approx(0.0, abs=1e-6)
    assert clip.frame_times[-1] == pytest.approx(29 / 30, abs=1e-6)
    levels = clip.frames[:, 32, 32, 0].astype(int)
    np.testing.assert_allclose(levels, 4 * np.arange(30, 60), atol=3)  # frames 30..59
    assert clip.audio.shape == (16000, 1)
    assert _peak_hz(clip.audio[:, 0], 16000) == pytest.approx(500.0, abs=3.0)
    full = read_media(path)
    np.testing.assert_allclose(clip.audio, full.audio[16000:32000], atol=1e-6)
    tail = read_media(path, start_s=3.5)  # to the end of the file
    assert tail.frames.shape[0] == 15 and tail.audio.shape[0] == 8000
    head = read_media(path, end_s=0.5, audio=False)
    assert head.frames.shape[0] == 15 and head.sample_rate == 0


def test_segment_of_a_wav_and_audio_from_another_file(tmp_path):
    path, frames, audio = _indexed_clip(tmp_path)
    wav = tmp_path / "speech.wav"
    write_wav(wav, audio, 16000)
    seg = read_media(wav, start_s=2.25, end_s=3.0)
    assert seg.audio.shape == (12000, 1)
    assert _peak_hz(seg.audio[:, 0], 16000) == pytest.approx(700.0, abs=3.0)
    # Video of one segment of the mp4, audio from the whole wav: both start at 0.
    clip = read_av(path, wav, video_segment=(2.0, 3.0))
    assert clip.frames.shape[0] == 30 and clip.audio.shape == (64000, 1)
    assert int(clip.frames[0, 32, 32, 0]) == pytest.approx(4 * 60, abs=3)
    assert clip.path == str(path)
    only_audio = read_av(None, wav, audio_segment=(1.0, 1.5))
    assert only_audio.frames.shape[0] == 0 and only_audio.audio.shape == (8000, 1)
    only_video = read_av(path, None)
    assert only_video.frames.shape[0] == 120 and only_video.sample_rate == 0


def test_bad_segments(tmp_path):
    path, _, _ = _indexed_clip(tmp_path)
    with pytest.raises(MediaError, match="indexed.mp4.*no frames or samples"):
        read_media(path, start_s=10.0, end_s=11.0)
    for start, end in ((2.0, 1.0), (-1.0, 1.0), (1.0, 1.0)):
        with pytest.raises(ValueError):
            read_media(path, start_s=start, end_s=end)
    silent = tmp_path / "silent.mp4"
    write_media(silent, _frames(10), 30.0, None, 0)
    with pytest.raises(MediaError, match="no audio stream"):
        read_av(path, silent)
    with pytest.raises(ValueError):
        read_av(None, None)
