"""Demo: play media files through file_source and the perception node; print estimates.

    python -m avemo_ros.ros.demo --model-dir data/models/synthetic --media clip1.mp4 ...
        [--video OUT.mp4 | --no-video] [--still OUT.png --still-at 6.5]

Starts the perception graph (the in-process runner) and a file source as two processes,
the way a launch file would, subscribes to ``emotion`` and prints one line per estimate.
Then writes an annotated mp4 of what it played (default: ``<media folder>_annotated.mp4``
beside the first clip's folder) and prints its path: the clips are decoded again and every
frame shows the newest estimate whose window had ended by the frame's time, drawn as
``~/debug_image`` draws it (:mod:`avemo_ros.annotate`). Re-decoding rather than collecting
``~/debug_image``: the video keeps the clips' 30 fps and their sound, with every frame, not
one image per estimate at most ``debug_rate_hz``, and the demo adds no raw-image traffic
while the node is being timed. Exits 0 once the media has played and at least one
estimate arrived.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import numpy as np
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import Bool

from avemo_ros.msg import EmotionEstimate

from ..conversions import stamp_to_ns
from ..media import MediaError
from . import graph, transport
from .compat import ros_context
from .runner import DEFAULT_PARAMS

MODALITY_NAMES = {1: "audio", 2: "video", 3: "audio+video"}


def format_estimate(msg: EmotionEstimate, t0_ns: int) -> str:
    """One human-readable line for an estimate."""
    end = (stamp_to_ns(msg.header.stamp) - t0_ns) / 1e9
    face = "face" if msg.face_detected else "no face"
    frac = float(msg.speech_fraction)
    speech = "speech  -  " if frac != frac else \
        f"{'speech' if msg.speech_detected else 'silent'} {frac:.2f}"  # NaN: no gate
    return (f"window ending {end:6.2f} s  {msg.label:<9s} {msg.confidence:5.2f}  "
            f"{MODALITY_NAMES.get(msg.modalities, '?'):<11s} {face:<7s} {speech}  "
            f"valence {msg.valence:+.2f} arousal {msg.arousal:+.2f}  "
            f"inference {msg.inference_time * 1e3:5.1f} ms  latency {msg.latency * 1e3:6.1f} ms")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", type=Path, required=True)
    ap.add_argument("--media", type=Path, nargs="+", required=True)
    ap.add_argument("--hop", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--video", type=Path, help="annotated mp4 of the clips played (default: "
                    "<first clip's folder>_annotated.mp4)")
    ap.add_argument("--no-video", action="store_true", help="write no annotated video")
    ap.add_argument("--still", type=Path, help="also write the annotated frame at --still-at "
                    "as a PNG")
    ap.add_argument("--still-at", type=float, default=6.5, help="media time of --still, s")
    own, ros_args = graph.split_ros_args(sys.argv[1:] if argv is None else argv)
    args = ap.parse_args(own)
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_LOCALHOST_ONLY="1")
    env.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 100 + 1))
    transport.setup_process("demo", env)  # the same DDS transport for both processes
    os.environ.update(env)
    tmp = tempfile.TemporaryDirectory(prefix="avemo_demo_")
    source_params = Path(tmp.name) / "file_source.yaml"
    source_params.write_text(graph.params_file_text(graph.file_source_parameters(
        [str(p.resolve()) for p in args.media], audio_rate=16000)))
    remaps = [x for rule in graph.remap_args(graph.remappings()) for x in ("-r", rule)]
    perception = subprocess.Popen(
        [sys.executable, "-m", "avemo_ros.ros.runner", "--model-dir", str(args.model_dir),
         "--param", f"hop_s:={args.hop}"], env=env)
    source = None
    received: list[EmotionEstimate] = []
    try:
        with ros_context(ros_args):
            node = Node("avemo_demo")
            done = {"value": False}
            node.create_subscription(EmotionEstimate, "emotion", received.append, 10)
            node.create_subscription(
                Bool, "/file_source/done", lambda m: done.update(value=bool(m.data)),
                QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            deadline = time.monotonic() + args.timeout
            # Wait until the perception node subscribes to the camera (it is active).
            while node.count_subscribers("image") == 0 and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.1)
                if perception.poll() is not None:
                    print("perception node exited early", file=sys.stderr)
                    return 1
            source = subprocess.Popen(  # the launch file's YAML, parameters and topics
                [sys.executable, "-m", "avemo_ros.ros.file_source", "--ros-args",
                 "--params-file", str(DEFAULT_PARAMS), "--params-file", str(source_params),
                 *remaps], env=env)
            t0, printed, done_at = None, 0, None
            while time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.1)
                for msg in received[printed:]:
                    if t0 is None:
                        t0 = stamp_to_ns(msg.window_start)
                    print(format_estimate(msg, t0), flush=True)
                printed = len(received)
                if done["value"] and done_at is None:
                    done_at = time.monotonic()
                if done_at is not None and time.monotonic() - done_at > 2.0:
                    break
            if received:
                lat = np.array([m.latency for m in received]) * 1e3
                print(f"{len(received)} estimates; latency p50 {np.percentile(lat, 50):.1f} ms, "
                      f"p95 {np.percentile(lat, 95):.1f} ms; model {received[0].model_id}")
            node.destroy_node()
    finally:
        for proc in (source, perception):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        tmp.cleanup()
    if received and not args.no_video:
        video = args.video or default_video_path(args.media[0])
        try:
            n = write_annotated_video(video, args.media, received, still=args.still,
                                      still_at_s=args.still_at)
        except (MediaError, ValueError) as e:
            print(f"annotated video not written: {e}", file=sys.stderr)
        else:
            print(f"annotated video: {video} ({n} frames)"
                  + (f"; still: {args.still}" if args.still else ""), flush=True)
    return 0 if received else 1


def default_video_path(first_media: Path) -> Path:
    """``data/demo/01.mp4`` -> ``data/demo_annotated.mp4`` (beside the clips' folder, so a
    glob of the clips never picks it up)."""
    folder = Path(first_media).resolve().parent
    return folder.with_name(folder.name + "_annotated.mp4")


def estimate_result(msg: EmotionEstimate) -> SimpleNamespace:
    """What :func:`avemo_ros.annotate.annotate` reads, from an EmotionEstimate message."""
    fraction = float(getattr(msg, "speech_fraction", float("nan")))
    speech = getattr(msg, "speech_detected", None)
    return SimpleNamespace(
        labels=list(msg.labels), probabilities=np.asarray(msg.probabilities, np.float64),
        label=msg.label, confidence=float(msg.confidence), modalities=int(msg.modalities),
        face_found=bool(msg.face_detected),
        face_box=tuple(int(v) for v in msg.face_box) if msg.face_detected else None,
        face_id=str(getattr(msg, "face_id", "") or ""),
        # NaN fraction: no speech gate ran, whatever speech_detected says (gate off)
        speech_detected=None if speech is None or not np.isfinite(fraction) else bool(speech),
        speech_fraction=fraction)


def write_annotated_video(path: Path, media: list[Path], estimates: list[EmotionEstimate], *,
                          audio_rate: int = 16000, min_width: int = 640,
                          still: Optional[Path] = None, still_at_s: float = 6.5) -> int:
    """The clips as file_source played them (back to back, each ``clip_span_ns`` long, audio
    at ``audio_rate``), each frame annotated with the newest estimate whose window had
    ended by its stamp; returns the frames written. Stamps are media time after the first
    window's start (the window grid starts at the first stamp the node got)."""
    import cv2

    from ..annotate import annotate
    from ..annotated_video import AnnotatedVideoWriter, EstimateTimeline
    from ..clip_stream import clip_audio, clip_span_ns, frame_offsets_ns
    from ..media import read_media

    base = min(stamp_to_ns(m.window_start) for m in estimates)
    timeline = EstimateTimeline((stamp_to_ns(m.header.stamp), estimate_result(m),
                                 float(m.latency)) for m in estimates)
    labels = list(estimates[0].labels)
    clips = [read_media(p) for p in media]
    offsets = np.cumsum([0] + [clip_span_ns(c, audio_rate) for c in clips])
    sound = np.zeros((int(offsets[-1]) * audio_rate // 1_000_000_000 + 1, 1), np.float32)
    for clip, off in zip(clips, offsets):
        a, _ = clip_audio(clip, audio_rate)
        if a.shape[0]:
            i = int(off) * audio_rate // 1_000_000_000
            n = min(a.shape[0], sound.shape[0] - i)
            sound[i:i + n] = a[:n, :1]
    fps = round(clips[0].fps, 2) or 30.0
    with AnnotatedVideoWriter(path, fps, audio=sound, sample_rate=audio_rate) as writer:
        for path_i, clip, off in zip(media, clips, offsets):
            for rgb, t_ns in zip(clip.frames, frame_offsets_ns(clip.frame_times)):
                t = int(off) + int(t_ns)  # media time of this frame
                result, latency = timeline.at(base + t)
                img = annotate(rgb, result, latency_s=latency, labels=labels,
                               min_width=min_width,
                               notes=[f"{Path(path_i).stem[:22]}", f"t {t / 1e9:5.2f} s"])
                writer.write(img, t / 1e9)
                if still is not None and abs(t / 1e9 - still_at_s) < 0.5 / fps:
                    still.parent.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(still), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return writer.frames_written


if __name__ == "__main__":
    raise SystemExit(main())
