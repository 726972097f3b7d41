"""Playback schedule (no ROS): stamps, pacing, chunking, loops and playlists."""
import numpy as np
import pytest

from avemo_ros.media import MediaClip
from avemo_ros.playback import (
    AudioEvent,
    MediaPlayback,
    PlaybackError,
    VideoEvent,
    clip_span_ns,
)

NS = 1_000_000_000
START = 1_700_000_000 * NS


def make_clip(duration_s=1.0, fps=30.0, rate=16000, colour=(255, 0, 0), channels=1, path="clip"):
    n_frames = int(round(duration_s * fps))
    frames = np.zeros((n_frames, 4, 6, 3), np.uint8)
    frames[...] = colour
    frames[:, 0, 0, 0] = np.arange(n_frames) % 256  # frame index marker
    n = int(round(duration_s * rate))
    t = np.arange(n) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    audio = np.repeat(tone[:, None], channels, axis=1)
    audio[:, 0] = np.arange(n) / n  # ramp: sample identity survives chunking
    return MediaClip(frames=frames, frame_times=np.arange(n_frames) / fps, audio=audio,
                     sample_rate=rate, path=path)


def drain(playback, until_ns=None):
    return playback.poll(until_ns if until_ns is not None else 10**15)


def split(events):
    video = [e for e in events if isinstance(e, VideoEvent)]
    audio = [e for e in events if isinstance(e, AudioEvent)]
    return video, audio


def test_video_stamps_follow_frame_times_and_are_monotonic():
    clip = make_clip(1.0)
    video, audio = split(drain(MediaPlayback(clip, START)))
    stamps = np.array([e.stamp_ns for e in video])
    assert len(video) == 30
    np.testing.assert_array_equal(stamps - START, np.rint(clip.frame_times * NS).astype(np.int64))
    assert np.all(np.diff(stamps) > 0)
    audio_stamps = np.array([e.stamp_ns for e in audio])
    assert audio_stamps[0] == START and np.all(np.diff(audio_stamps) > 0)
    assert [e.index for e in video] == list(range(30))


def test_chunking_covers_every_sample_exactly_once():
    clip = make_clip(1.0)
    clip.audio = np.concatenate([clip.audio, clip.audio[:17]])  # not a multiple of the chunk
    _, audio = split(drain(MediaPlayback(clip, START, chunk_s=0.032)))
    sizes = [e.samples.shape[0] for e in audio]
    assert sizes[:-1] == [512] * (len(sizes) - 1) and sizes[-1] == (16017 % 512)
    np.testing.assert_array_equal(np.concatenate([e.samples for e in audio]), clip.audio)
    starts = [e.first_sample for e in audio]
    assert starts == list(np.cumsum([0] + sizes[:-1]))
    # Each stamp is the time of the chunk's first sample.
    for e in audio:
        assert e.stamp_ns - START == round(e.first_sample * NS / 16000)
        assert e.sample_rate == 16000


def test_realtime_pacing():
    playback = MediaPlayback(make_clip(1.0), START, chunk_s=0.032)
    # A frame is due at its presentation time, an audio chunk once its last sample is captured.
    assert split(playback.poll(0))[0][0].index == 0
    assert split(playback.poll(31_999_999))[1] == []
    video, audio = split(playback.poll(32_000_000))
    assert [e.first_sample for e in audio] == [0] and [e.index for e in video] == []
    assert playback.poll(33_333_332) == []
    assert [e.index for e in split(playback.poll(33_333_333))[0]] == [1]
    # Polling every 5 ms hands out each event once, in the tick in which it became due.
    previous = 33_333_333
    seen = 0
    for elapsed in range(previous + 5_000_000, 2 * NS, 5_000_000):
        events = playback.poll(elapsed)
        assert all(previous < e.due_ns <= elapsed for e in events)
        assert [e.due_ns for e in events] == sorted(e.due_ns for e in events)
        seen += len(events)
        previous = elapsed
    assert seen == (30 - 2) + (32 - 1)  # 16000 samples = 31.25 chunks -> 32
    assert playback.finished and playback.next_due_ns is None


def test_finishes_only_after_the_clip_span():
    clip = make_clip(1.0)
    playback = MediaPlayback(clip, START)
    drain(playback, NS - 1)
    assert not playback.finished and playback.next_due_ns == NS
    last = playback.poll(NS)  # the last audio chunk is due at its end, the clip end
    assert [type(e) for e in last] == [AudioEvent] and last[0].due_ns == NS
    assert playback.finished
    assert clip_span_ns(clip) == NS


def test_loop_continues_stamps():
    clip = make_clip(0.5)
    playback = MediaPlayback(clip, START, loop=True)
    video, audio = split(playback.poll(int(1.6 * NS)))
    assert not playback.finished and playback.passes == 3
    stamps = np.array([e.stamp_ns for e in video])
    assert np.all(np.diff(stamps) > 0)
    period = stamps[15] - stamps[0]
    assert period == clip_span_ns(clip) == NS // 2
    np.testing.assert_array_equal(stamps[15:30] - stamps[:15], period)
    # Audio is contiguous across the loop boundary: each chunk starts where the last ended.
    ends = [e.stamp_ns + round(e.samples.shape[0] * NS / e.sample_rate) for e in audio]
    assert all(abs(a.stamp_ns - end) <= 1 for a, end in zip(audio[1:], ends[:-1]))
    # Turning loop off ends playback after the current pass.
    playback.loop = False
    drain(playback)
    assert playback.finished and playback.passes == 3


def test_playlist_order_and_offsets():
    red = make_clip(1.0, colour=(255, 0, 0), path="red")
    blue = make_clip(0.5, colour=(0, 0, 255), rate=8000, channels=2, path="blue")
    playback = MediaPlayback([red, blue], START)
    assert playback.paths == ["red", "blue"] and playback.playlist_span_ns == 3 * NS // 2
    assert playback.sample_rates == [16000, 8000] and playback.channels == [1, 2]
    events = drain(playback)
    items = [e.item for e in events]
    assert items == sorted(items) and set(items) == {0, 1}
    video, audio = split(events)
    assert [tuple(e.rgb[1, 1]) for e in video] == [(255, 0, 0)] * 30 + [(0, 0, 255)] * 15
    first_blue = next(e for e in video if e.item == 1)
    assert first_blue.stamp_ns == START + NS
    blue_audio = [e for e in audio if e.item == 1]
    assert blue_audio[0].stamp_ns == START + NS and blue_audio[0].samples.shape[1] == 2
    assert sum(e.samples.shape[0] for e in blue_audio) == 4000
    assert all(np.diff([e.stamp_ns for e in audio]) > 0)


def test_looping_playlist_wraps_to_the_first_item():
    playback = MediaPlayback([make_clip(0.2, path="a"), make_clip(0.3, path="b")], START,
                             loop=True)
    video, _ = split(playback.poll(int(1.19 * NS)))
    order = [e.item for e in video]
    changes = [order[0]] + [b for a, b in zip(order, order[1:]) if a != b]
    assert changes == [0, 1, 0, 1, 0]
    assert all(np.diff([e.stamp_ns for e in video]) > 0)


def test_resampling_and_single_stream_clips():
    clip = make_clip(1.0)
    _, audio = split(drain(MediaPlayback(clip, START, audio_rate=8000)))
    assert {e.sample_rate for e in audio} == {8000}
    assert sum(e.samples.shape[0] for e in audio) == 8000
    assert audio[0].samples.shape[0] == 256  # 32 ms at 8 kHz
    video_only = MediaClip(clip.frames, clip.frame_times, np.zeros((0, 1), np.float32), 0, "v")
    video, audio = split(drain(MediaPlayback(video_only, START)))
    assert len(video) == 30 and audio == []
    audio_only = MediaClip(np.zeros((0, 0, 0, 3), np.uint8), np.zeros(0), clip.audio, 16000, "a")
    video, audio = split(drain(MediaPlayback(audio_only, START)))
    assert video == [] and sum(e.samples.shape[0] for e in audio) == 16000


def test_invalid_playlists():
    with pytest.raises(PlaybackError, match="empty playlist"):
        MediaPlayback([], START)
    with pytest.raises(PlaybackError, match="chunk_s"):
        MediaPlayback(make_clip(0.1), START, chunk_s=0)
    empty = MediaClip(np.zeros((0, 0, 0, 3), np.uint8), np.zeros(0), np.zeros((0, 1), np.float32),
                      0, "nothing")
    with pytest.raises(PlaybackError, match="nothing: clip has neither"):
        MediaPlayback([make_clip(0.1), empty], START)
    bad = make_clip(0.1)
    bad.frame_times = bad.frame_times[:-1]
    with pytest.raises(PlaybackError, match="frame times"):
        MediaPlayback(bad, START)
