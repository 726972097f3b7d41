"""Byte audio as ros-drivers audio_capture sends it: MP3 vs PCM, decoding, stamps, clocks."""
from __future__ import annotations

import numpy as np
import pytest

from avemo_ros.audio_codec import UnsupportedAudio, chunk_to_audio_data_bytes
from avemo_ros.audio_stream import (NS, ByteAudioDecoder, ByteFormat, ClockMapper, SampleClock,
                                    sniff_coding)

import audio_drivers

RATE = 16000


def voice_like(seconds: float, seed: int = 0) -> np.ndarray:
    """A tone sweep with noise and an amplitude envelope, float32 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f = 180 + 60 * np.sin(2 * np.pi * 0.7 * t)
    x = 0.4 * np.sin(2 * np.pi * np.cumsum(f) / RATE) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return (x + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def test_sniff_tells_mp3_frames_from_pcm():
    audio = voice_like(1.0)
    frames = [data for _, data in audio_drivers.mp3_frames(audio, RATE)]
    assert all(sniff_coding(f) == "mp3" for f in frames[1:-1])
    assert sniff_coding(b"".join(frames[3:6])) == "mp3"
    assert sniff_coding(b"ID3\x04\x00" + frames[0]) == "mp3"
    assert sniff_coding(chunk_to_audio_data_bytes(audio[:160], "S16LE")) == "wave"
    # PCM that starts with an MPEG sync word but has no second frame where one would be
    fake = np.frombuffer(b"\xff\xfb\x90\x64" + bytes(996), np.uint8)
    assert sniff_coding(fake) == "wave"
    assert sniff_coding(b"") == "wave"


@pytest.mark.parametrize("split", ["frames", "odd_chunks"])
def test_mp3_stream_decodes_to_the_signal_with_continuous_stamps(split):
    audio = voice_like(2.0, seed=3)
    frames = audio_drivers.mp3_frames(audio, RATE)
    if split == "frames":
        messages = [(i, data) for i, data in frames]
    else:  # a driver that cuts the stream anywhere: 1000-byte messages
        blob = b"".join(d for _, d in frames)
        messages = [(k * 1000 * RATE // 16000, blob[k * 1000:(k + 1) * 1000])
                    for k in range(len(blob) // 1000 + 1)]
    dec = ByteAudioDecoder(ByteFormat(coding="mp3"))
    t0 = 50 * NS
    chunks = [c for i, data in messages
              if (c := dec.decode(data, t0 + i * NS // RATE)) is not None]
    assert chunks and all(c.sample_rate == RATE for c in chunks)
    for a, b in zip(chunks, chunks[1:]):  # sample-continuous stamps
        assert b.stamp_ns == a.end_ns
    assert chunks[0].stamp_ns == t0
    out = np.concatenate([c.samples[:, 0] for c in chunks])
    assert len(out) >= len(audio)
    # the decoded stream is the signal, delayed by the codec: find the lag, compare
    lags = range(0, 3000)
    best = max(lags, key=lambda k: float(np.dot(out[k:k + 8000], audio[:8000])))
    ref, got = audio[4000:28000], out[best + 4000:best + 28000]
    assert np.corrcoef(ref, got)[0, 1] > 0.97
    assert best < 2500  # the encoder + decoder delay, well under 0.2 s


def test_pcm_keeps_header_stamps_and_arrival_stamps_are_made_continuous():
    audio = voice_like(0.2)
    dec = ByteAudioDecoder(ByteFormat("wave", "S16LE", 1, RATE))
    data = chunk_to_audio_data_bytes(audio[:160], "S16LE")
    chunk = dec.decode(data, 7 * NS)
    assert chunk.stamp_ns == 7 * NS and chunk.samples.shape == (160, 1)
    np.testing.assert_allclose(chunk.samples[:, 0], audio[:160], atol=1 / 32767)
    # headerless: arrival times jitter by a few ms; stamps follow the sample count
    stamps = [dec.decode(data, 9 * NS + k * 10_000_000 + jitter, arrival=True).stamp_ns
              for k, jitter in enumerate([0, 3_000_000, -2_000_000, 4_000_000])]
    assert np.all(np.diff(stamps) == 10_000_000)
    assert stamps[0] == 9 * NS - 10_000_000  # the samples ended on arrival


def test_sample_clock_restarts_after_a_gap():
    clock = SampleClock(resync_s=0.25)
    assert clock.stamp(NS, 1600, RATE) == NS
    assert clock.stamp(NS + 110_000_000, 1600, RATE) == NS + 100_000_000
    assert clock.stamp(3 * NS, 1600, RATE) == 3 * NS  # 1.8 s later: a new stream position


def test_clock_mapper_maps_a_foreign_clock_and_keeps_a_replayed_one():
    now = 1_700_000_000 * NS
    m = ClockMapper("auto")
    assert m.map(now - NS, now) == now - NS  # ROS-time stamps are kept
    gst = 5_000 * NS  # GStreamer's monotonic clock
    assert m.map(gst, now) == now and m.changes == 1
    assert m.map(gst + NS, now + NS + 5_000_000) == now + NS and m.changes == 1  # fixed offset
    # a bag replayed without sim time: old stamps, but camera and audio agree: kept
    old = now - 86_400 * NS
    replay = ClockMapper("auto")
    assert replay.map(old, now, peer_ns=old + 30_000_000) == old
    assert ClockMapper("header").map(gst, now) == gst
    with pytest.raises(ValueError):
        ClockMapper("arrival")


def test_unknown_coding_is_refused_with_the_fix():
    with pytest.raises(UnsupportedAudio, match="format:=wave"):
        ByteAudioDecoder(ByteFormat(coding="opus"))
