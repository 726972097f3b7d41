"""Demo: play media files through file_source and the perception node; print estimates.

    python -m avemo_ros.ros.demo --model-dir data/models/synthetic --media clip1.mp4 ...

Starts the perception graph (the in-process runner) and a file source as two processes,
the way a launch file would, subscribes to ``emotion`` and prints one line per estimate.
Exits 0 once the media has played and at least one estimate arrived.
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

import numpy as np
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import Bool

from avemo_ros.msg import EmotionEstimate

from ..conversions import stamp_to_ns
from . import graph, transport
from .compat import ros_context
from .runner import DEFAULT_PARAMS

MODALITY_NAMES = {1: "audio", 2: "video", 3: "audio+video"}


def format_estimate(msg: EmotionEstimate, t0_ns: int) -> str:
    """One human-readable line for an estimate."""
    end = (stamp_to_ns(msg.header.stamp) - t0_ns) / 1e9
    face = "face" if msg.face_detected else "no face"
    return (f"window ending {end:6.2f} s  {msg.label:<9s} {msg.confidence:5.2f}  "
            f"{MODALITY_NAMES.get(msg.modalities, '?'):<11s} {face:<7s} "
            f"valence {msg.valence:+.2f} arousal {msg.arousal:+.2f}  "
            f"inference {msg.inference_time * 1e3:5.1f} ms  latency {msg.latency * 1e3:6.1f} ms")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", type=Path, required=True)
    ap.add_argument("--media", type=Path, nargs="+", required=True)
    ap.add_argument("--hop", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=120.0)
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
    return 0 if received else 1


if __name__ == "__main__":
    raise SystemExit(main())
