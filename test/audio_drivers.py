"""Test publishers that behave like the two upstream audio capture nodes.

Read from their sources (not copied):

- ros-drivers/audio_common ``audio_capture/src/audio_capture_node.cpp`` (ros2 branch, the
  released audio_common_msgs): node ``audio_capture``; ``AudioData`` on ``audio`` and
  ``AudioDataStamped`` on ``audio_stamped`` (depth 10: reliable, volatile), ``AudioInfo`` on
  ``audio_info`` (depth 1, reliable, volatile) once at start and every 5 s; ``format`` mp3
  by default (lamemp3enc, one MP3 frame per buffer) or wave (raw PCM, S16LE, alsasrc's
  10 ms buffers); 1 channel, 16 kHz; header stamp = GStreamer base time + buffer PTS,
  i.e. the pipeline's (monotonic) clock, not ROS time.
- mgonzs13/audio_common 4.0.x ``audio_capturer_node.cpp``: node ``audio_capturer_node``;
  ``AudioStamped`` on ``audio`` with ``SensorDataQoS`` (best effort, depth 5); paInt16,
  1 channel, 16 kHz, chunks of 512 frames; header stamp = node clock ``now()``.
"""
from __future__ import annotations

import time

import av
import numpy as np
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

from avemo_ros import audio_codec
from avemo_ros.conversions import ns_to_stamp

NS = 1_000_000_000
CAPTURE_DATA_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                              durability=DurabilityPolicy.VOLATILE)
CAPTURE_INFO_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                              durability=DurabilityPolicy.VOLATILE)
CAPTURER_QOS = qos_profile_sensor_data
INFO_PERIOD_S = 5.0


def mp3_frames(samples: np.ndarray, rate: int, bitrate_kbps: int = 128) -> list[tuple[int, bytes]]:
    """(first sample index, bytes) of each MP3 frame of mono float ``samples`` (libmp3lame)."""
    ctx = av.CodecContext.create("libmp3lame", "w")
    ctx.sample_rate, ctx.layout, ctx.format, ctx.bit_rate = (rate, "mono", "s16p",
                                                             bitrate_kbps * 1000)
    pcm = np.clip(np.rint(samples * 32767), -32768, 32767).astype(np.int16)
    ctx.open()
    size = ctx.frame_size  # samples per MP3 frame: 576 (MPEG-2, 16 kHz) or 1152 (MPEG-1)
    out, sent = [], 0
    for i in range(0, len(pcm), size):
        block = pcm[i:i + size]
        if len(block) < size:
            block = np.pad(block, (0, size - len(block)))
        frame = av.AudioFrame.from_ndarray(block[None, :], format="s16p", layout="mono")
        frame.sample_rate, frame.pts = rate, i
        for packet in ctx.encode(frame):
            out.append((sent * size, bytes(packet)))
            sent += 1
    for packet in ctx.encode(None):
        out.append((sent * size, bytes(packet)))
        sent += 1
    return out


class AudioCapture:
    """Messages of ros-drivers ``audio_capture`` for a stretch of mono float audio."""

    def __init__(self, acm, coding: str = "mp3", rate: int = 16000, bitrate_kbps: int = 128,
                 clock_origin_ns: int | None = None):
        self.acm, self.coding, self.rate, self.bitrate = acm, coding, rate, bitrate_kbps
        # the GStreamer pipeline clock: monotonic, far from ROS (epoch) time
        self.origin_ns = time.monotonic_ns() if clock_origin_ns is None else clock_origin_ns

    def info(self):
        """The AudioInfo it publishes on audio_info."""
        return self.acm.AudioInfo(channels=1, sample_rate=self.rate, sample_format="S16LE",
                                  bitrate=self.bitrate, coding_format=self.coding)

    def buffers(self, samples: np.ndarray) -> list[tuple[float, bytes]]:
        """(media time s, bytes) of each buffer the pipeline hands to its appsink."""
        if self.coding == "mp3":
            return [(i / self.rate, data)
                    for i, data in mp3_frames(samples, self.rate, self.bitrate)]
        step = self.rate // 100  # alsasrc: 10 ms buffers
        return [(i / self.rate,
                 audio_codec.chunk_to_audio_data_bytes(samples[i:i + step], "S16LE"))
                for i in range(0, len(samples) - step + 1, step)]

    def events(self, samples: np.ndarray, t0: float = 0.0, info_every_s: float = INFO_PERIOD_S):
        """(t, kind, msg) events: AudioData on 'audio', AudioDataStamped on 'audio_stamped',
        AudioInfo on 'audio_info' at t0 and every ``info_every_s``."""
        events = []
        for t, data in self.buffers(samples):
            stamped = self.acm.AudioDataStamped()
            stamped.header.stamp = ns_to_stamp(self.origin_ns + int(round((t0 + t) * NS)))
            stamped.audio.data = data
            events += [(t0 + t, "audio", self.acm.AudioData(data=data)),
                       (t0 + t, "audio_stamped", stamped)]
        duration = len(samples) / self.rate
        events += [(t0 + k * info_every_s, "audio_info", self.info())
                   for k in range(int(duration // info_every_s) + 1)]
        return events


def capturer_message(acm, samples: np.ndarray, stamp_ns: int, rate: int = 16000):
    """One mgonzs13 ``audio_capturer_node`` message (paInt16)."""
    return audio_codec.chunk_to_audio_stamped(samples, rate, stamp_ns, "", acm, fmt="int16")
