"""Camera + microphone publisher for the live benchmark, in its own process.

    python -m bench.publisher --seconds 28 --json lag.json

Publishes 640x480 bgr8 frames at 30 fps on ``image`` (half a frame out of phase with the
window grid) and 32 ms chunks of 16 kHz S16LE audio in real time (a synthetic held-out
clip streamed by ``avemo_ros.clip_stream``, looped with continuing stamps; header stamp =
the scheduled time on the system clock) once a subscriber exists on both topics, and
writes how late each publish call returned relative to its stamp (publisher lag). The
microphone is published where the perception graph listens by default
(``avemo_ros.ros.graph.TOPICS``): AudioDataStamped on ``/audio/audio_stamped`` with a
latched AudioInfo (wave, S16LE, 1 ch, 16 kHz) on ``/audio/audio_info``, as ros-drivers
audio_capture with ``format: wave``; ``--audio-type AudioStamped`` publishes the mgonzs13
type on ``--audio-topic`` instead.
"""

from __future__ import annotations

import argparse
import array
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

NS = 1_000_000_000


def _looped(first_pass, events, span_ns):
    """(offset ns, event) of the clip's stream played again and again, stamps continuing."""
    yield from ((0, e) for e in first_pass)
    offset = span_ns
    while True:
        yield from ((offset, e) for e in events)
        offset += span_ns


def with_extra_faces(rgb: np.ndarray, n: int) -> np.ndarray:
    """``rgb`` with ``n`` astronaut faces pasted left and right of the clip's face (grey)."""
    from .face_scenes import paste_face

    h, w = rgb.shape[:2]
    grey = rgb.astype(np.float32).mean(axis=2)
    before = grey.copy()
    for i in range(n):
        paste_face(grey, 0.22 * h, (w * (0.13 if i == 0 else 0.87), h * 0.3), 0.0, i == 1)
    out = rgb.copy()
    changed = grey != before
    out[changed] = np.clip(grey[changed], 0, 255).astype(np.uint8)[:, None]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, required=True, help="stream duration")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--size", default="640x480", help="WIDTHxHEIGHT")
    ap.add_argument("--chunk", type=int, default=512, help="audio samples per message")
    ap.add_argument(
        "--camera-phase",
        type=float,
        default=0.5,
        help="camera stamps lag the audio clock by this fraction of a frame interval "
        "(a real camera is not aligned with the window grid)",
    )
    ap.add_argument(
        "--wait", type=float, default=120.0, help="max seconds to wait for subscribers"
    )
    ap.add_argument(
        "--audio-type", choices=("AudioDataStamped", "AudioStamped"), default="AudioDataStamped"
    )
    ap.add_argument("--audio-topic", help="default: the graph's audio topic")
    ap.add_argument("--extra-faces", type=int, default=0, choices=(0, 1, 2),
                    help="real faces (scikit-image's astronaut) pasted beside the clip's face")
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args(argv)

    import rclpy
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    import audio_common_msgs.msg as acm

    from avemo_ros import audio_codec, conversions as conv
    from avemo_ros.clip_stream import AudioEvent, VideoEvent, clip_events, clip_span_ns
    from avemo_ros.ros.graph import TOPICS
    from training.synthetic import render_clip

    w, h = (int(v) for v in args.size.split("x"))
    frames, audio, rate = render_clip(
        "happy", 20, duration_s=4.0, seed=5, fps=args.fps, size=(w, h), intensity=2
    )
    if args.extra_faces:
        frames = [with_extra_faces(f, args.extra_faces) for f in frames]
    # bgr8 pixels, converted once; camera times lag the audio clock by the phase
    clip = SimpleNamespace(
        frames=[np.ascontiguousarray(f[..., ::-1]) for f in frames],
        frame_times=(np.arange(len(frames)) + args.camera_phase) / args.fps,
        audio=audio, sample_rate=rate, duration=len(frames) / args.fps,
    )
    events = clip_events(clip, 0, chunk_samples=args.chunk, audio_rate=16000)
    span_ns = clip_span_ns(clip, 16000)  # one pass; looped with continuing stamps
    rclpy.init()
    node = rclpy.create_node("bench_publisher")
    image_pub = node.create_publisher(Image, "image", 10)
    stamped = args.audio_type == "AudioStamped"
    audio_pub = node.create_publisher(
        getattr(acm, args.audio_type),
        args.audio_topic or TOPICS["audio"],
        QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE),
    )
    if not stamped:  # latched, like a driver that publishes its format once
        info_pub = node.create_publisher(
            acm.AudioInfo,
            TOPICS["audio_info"],
            QoSProfile(
                depth=1,
                reliability=ReliabilityPolicy.RELIABLE,
                durability=DurabilityPolicy.TRANSIENT_LOCAL,
            ),
        )
        info_pub.publish(
            acm.AudioInfo(
                channels=1,
                sample_rate=16000,
                sample_format="S16LE",
                bitrate=256000,
                coding_format="wave",
            )
        )
    deadline = time.monotonic() + args.wait
    while image_pub.get_subscription_count() == 0 or audio_pub.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            print("no subscriber on image and audio", file=sys.stderr)
            return 1
        time.sleep(0.05)
    time.sleep(0.5)  # let discovery settle on both ends
    template = conv.rgb_to_image(frames[0], 0, "camera", encoding="bgr8")
    # a chunk is published at its end (its due time); the very first one goes out at once
    # so that the window grid starts on the audio clock
    first_audio = next(e for e in events if isinstance(e, AudioEvent))
    first_pass = [first_audio] + [e for e in events if e is not first_audio]
    lag = {"image": [], "audio": []}
    base = time.time_ns()
    t0 = time.monotonic_ns()
    fi = ai = 0
    n_frames = int(args.seconds * args.fps)
    for offset, event in _looped(first_pass, events, span_ns):
        if fi >= n_frames:
            break
        due = -1 if event is first_audio and offset == 0 else offset + event.due_ns
        delay = (due - (time.monotonic_ns() - t0)) / NS
        if delay > 0:
            time.sleep(delay)
        stamp_ns = base + offset + event.stamp_ns
        if isinstance(event, VideoEvent):
            msg = Image(
                height=template.height,
                width=template.width,
                encoding="bgr8",
                is_bigendian=0,
                step=template.step,
            )
            msg.header.frame_id = "camera"
            msg.header.stamp = conv.ns_to_stamp(stamp_ns)
            data = array.array("B")
            data.frombytes(event.rgb.data)  # bgr8 pixels; one copy, no per-pixel checks
            msg.data = data
            image_pub.publish(msg)
            lag["image"].append((time.time_ns() - stamp_ns) / 1e6)
            fi += 1
        else:
            samples = event.samples
            if stamped:
                audio_pub.publish(
                    audio_codec.chunk_to_audio_stamped(samples, 16000, stamp_ns, "microphone", acm)
                )
            else:
                msg = acm.AudioDataStamped()
                msg.header.stamp = conv.ns_to_stamp(stamp_ns)
                msg.header.frame_id = "microphone"
                msg.audio.data = array.array(
                    "B", audio_codec.chunk_to_audio_data_bytes(samples, "S16LE")
                )
                audio_pub.publish(msg)
            if due >= 0:
                lag["audio"].append((time.time_ns() - base - due) / 1e6)
            ai += 1
    time.sleep(0.5)
    args.json.write_text(
        json.dumps({"base_ns": base, "frames": fi, "audio_chunks": ai, "lag_ms": lag})
    )
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
