"""Clip -> stream (no ROS): one rounding rule for stamps and due times, chunking, order."""
from types import SimpleNamespace

import numpy as np
import pytest

from avemo_ros.clip_stream import (
    AudioEvent,
    ClipStreamError,
    VideoEvent,
    chunk_length,
    clip_events,
    clip_span_ns,
    clips_events,
    frame_offsets_ns,
    samples_to_ns,
)

NS = 1_000_000_000
START = 1_700_000_000 * NS


def clip(n_frames=10, fps=30.0, n_samples=16000 // 3, rate=16000, frame_times=None):
    frames = np.zeros((n_frames, 2, 2, 3), np.uint8)
    frames[:, 0, 0, 0] = np.arange(n_frames)
    times = np.arange(n_frames) / fps if frame_times is None else np.asarray(frame_times)
    audio = (np.arange(n_samples, dtype=np.float32) / max(1, n_samples))[:, None]
    return SimpleNamespace(frames=frames, frame_times=times, audio=audio, sample_rate=rate)


def split(events):
    return ([e for e in events if isinstance(e, VideoEvent)],
            [e for e in events if isinstance(e, AudioEvent)])


def test_rounding_rule_for_frames_and_chunks():
    # 1/30 s and 441 samples at 44.1 kHz do not fall on whole nanoseconds
    c = clip(n_frames=4, n_samples=2000, rate=44100)
    video, audio = split(clip_events(c, START, chunk_samples=441))
    assert [e.stamp_ns - START for e in video] == [0, 33_333_333, 66_666_667, 100_000_000]
    assert all(e.due_ns == e.stamp_ns for e in video)
    assert [e.first_sample for e in audio] == [0, 441, 882, 1323, 1764]
    assert [e.stamp_ns - START for e in audio] == [round(s * NS / 44100)
                                                    for s in (0, 441, 882, 1323, 1764)]
    # due at the end of the chunk, as a microphone delivers it; the last one is short
    assert [e.due_ns - START for e in audio] == [round(s * NS / 44100)
                                                  for s in (441, 882, 1323, 1764, 2000)]
    assert [len(e.samples) for e in audio] == [441] * 4 + [2000 - 1764]
    assert samples_to_ns(1, 3) == 333_333_333 and samples_to_ns(2, 3) == 666_666_667


def test_events_in_due_order_audio_first_on_ties():
    c = clip(n_frames=3, fps=50.0, n_samples=960, rate=16000)  # frames every 20 ms
    events = clip_events(c, START, chunk_s=0.02)  # chunks of 320 samples end every 20 ms
    dues = [e.due_ns for e in events]
    assert dues == sorted(dues)
    kinds = [type(e).__name__[0] for e in events]
    # frame 0 at 0; chunk 0 ends at 20 ms together with frame 1: audio first
    assert kinds == ["V", "A", "V", "A", "V", "A"]


def test_chunks_cover_every_sample_once_and_whole_chunks_drops_the_tail():
    c = clip(n_frames=0, n_samples=1000)
    _, audio = split(clip_events(c, 0, chunk_samples=256))
    np.testing.assert_array_equal(np.concatenate([e.samples for e in audio]), c.audio)
    _, whole = split(clip_events(c, 0, chunk_samples=256, whole_chunks=True))
    assert [len(e.samples) for e in whole] == [256, 256, 256]
    assert chunk_length(16000, 0.032) == 512 and chunk_length(16000, chunk_samples=100) == 100
    with pytest.raises(ClipStreamError):
        chunk_length(16000, 0.0)


def test_resampled_audio_and_frame_time_guards():
    c = clip(n_frames=3, n_samples=4800, rate=48000, frame_times=[0.0, -0.001, 0.05])
    video, audio = split(clip_events(c, 0, chunk_s=0.02, audio_rate=16000))
    assert {e.sample_rate for e in audio} == {16000}
    assert sum(len(e.samples) for e in audio) == 1600
    assert [e.stamp_ns for e in video] == [0, 0, 50_000_000]  # kept in order, never < 0
    np.testing.assert_array_equal(frame_offsets_ns([0.5, 0.25]), [500_000_000, 500_000_000])
    with pytest.raises(ClipStreamError):
        frame_offsets_ns([0.0, np.nan])
    bad = clip(n_frames=3)
    bad.frame_times = bad.frame_times[:2]
    with pytest.raises(ClipStreamError):
        clip_events(bad)


def test_clips_end_to_end_with_gap():
    a, b = clip(n_frames=3, n_samples=1600), clip(n_frames=2, n_samples=800)
    span = clip_span_ns(a)
    assert span == 100_000_000  # audio 0.1 s outlasts the last frame (66.7 ms)
    events = clips_events([a, b], START, gap_ns=50_000_000, chunk_samples=400)
    video, audio = split(events)
    assert [e.item for e in video] == [0, 0, 0, 1, 1]
    assert video[3].stamp_ns == START + span + 50_000_000
    assert audio[-1].stamp_ns == START + span + 50_000_000 + 25_000_000
    dues = [e.due_ns for e in events]
    assert dues == sorted(dues)
