"""What crosses the network, and what it costs in latency: the split graph vs all-in-one.

    scripts/rosenv.sh python -m bench.split_graph [--windows 40] [--hop 0.5]

Each graph runs in turn under the runner (``--graph all_in_one``: one perception_node;
``--graph split``: audio_node, video_node and fusion_node, three processes), fed by
``bench.publisher`` (a 30 fps 640x480 bgr8 camera and a 16 kHz microphone in real time, its
own process). This process records, on the system clock, every EmotionEstimate (latency =
receive time - window end) and the serialized bytes of the split graph's ModalityEstimate
topics (raw subscriptions: the CDR bytes DDS carries). The camera's bytes are the
publisher's frames times the serialized size of one frame message (not received here, so
that this process does not compete for the cores with 27 MB/s of images). Camera side ->
decision side: ``image`` for all-in-one (the node runs where the decision is), the
``video_estimate`` topic for the split graph. Writes bench/results/split_graph.md/.json.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
NS = 1_000_000_000


def _frame_bytes(width: int = 640, height: int = 480) -> int:
    """Serialized size of one bgr8 Image message of the publisher's camera."""
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    msg = Image(height=height, width=width, encoding="bgr8", step=width * 3)
    msg.header.frame_id = "camera"
    msg.data = bytes(width * height * 3)
    return len(serialize_message(msg))


class _Lines:
    """A process's output, collected on a thread."""

    def __init__(self, proc: subprocess.Popen):
        self.lines: list[str] = []
        self._t = threading.Thread(target=lambda: self.lines.extend(
            iter(proc.stdout.readline, "")), daemon=True)
        self._t.start()

    def count(self, text: str) -> int:
        return "".join(self.lines).count(text)


def run_graph(graph: str, bundle: Path, *, windows: int, hop_s: float, node) -> dict:
    """One run of ``graph``; ``node``: this process's rclpy node (spun elsewhere)."""
    from rclpy.qos import QoSProfile

    from avemo_ros.msg import EmotionEstimate, ModalityEstimate
    from bench.live import transport_envs

    # the runner's own Fast DDS choice in the nodes, the launch file's in the publisher
    _, env, pub_env = transport_envs("default")
    cmd = [sys.executable, "-m", "avemo_ros.ros.runner", "--model-dir", str(bundle), "--graph",
           graph, "--param", f"hop_s:={hop_s}", "--param", "debug_rate_hz:=0.0"]
    runner = subprocess.Popen(cmd, env=env, cwd=str(ROOT), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    out = _Lines(runner)
    estimates: list = []
    sizes: dict[str, list] = {"audio_estimate": [], "video_estimate": []}
    subs = [node.create_subscription(EmotionEstimate, "emotion", lambda m: estimates.append(
        (time.time_ns(), m)), QoSProfile(depth=50))]
    for topic in sizes:
        subs.append(node.create_subscription(
            ModalityEstimate, topic, lambda b, t=topic: sizes[t].append((time.time_ns(), len(b))),
            QoSProfile(depth=50), raw=True))
    stream_s = 3.0 + windows * hop_s + 0.2
    lag_file = Path(tempfile.mkstemp(prefix="avemo_pub_", suffix=".json")[1])
    try:
        deadline = time.monotonic() + 180
        want = 3 if graph == "split" else 1
        while out.count("autostart: ") < want:
            if runner.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{graph} did not start:\n{''.join(out.lines)[-3000:]}")
            time.sleep(0.2)
        pub = subprocess.run([sys.executable, "-m", "bench.publisher", "--seconds",
                              str(stream_s), "--json", str(lag_file)], env=pub_env, cwd=str(ROOT),
                             capture_output=True, text=True, timeout=stream_s + 240)
        if pub.returncode != 0:
            raise RuntimeError(f"publisher failed:\n{pub.stdout[-2000:]}{pub.stderr[-2000:]}")
        time.sleep(4.0)  # the last windows
    finally:
        for sub in subs:
            node.destroy_subscription(sub)
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGINT)
            try:
                runner.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(runner.pid, signal.SIGKILL)
    published = json.loads(lag_file.read_text())
    lag_file.unlink()
    from bench.timing import percentiles

    span_s = stream_s - 0.2
    frame_bytes = _frame_bytes()
    camera = published["frames"] * frame_bytes / span_s
    latency = [(rx - (m.header.stamp.sec * NS + m.header.stamp.nanosec)) / 1e6
               for rx, m in estimates]
    row = {
        "graph": graph,
        "estimates": len(estimates),
        "windows_expected": int((stream_s - 3.0) / hop_s + 1e-9) + 1,
        "frames_published": published["frames"],
        "camera_bytes_per_s": round(camera),
        "frame_message_bytes": frame_bytes,
        "latency_ms": percentiles(latency),
        "modalities": sorted({int(m.modalities) for _, m in estimates}),
    }
    for topic, got in sizes.items():
        if got:
            row[f"{topic}_bytes_per_s"] = round(sum(n for _, n in got) / span_s, 1)
            row[f"{topic}_messages"] = len(got)
            row[f"{topic}_message_bytes_max"] = max(n for _, n in got)
    row["camera_side_to_decision_bytes_per_s"] = row.get("video_estimate_bytes_per_s", camera)
    return row


def render(res: dict) -> str:
    m = res["machine"]
    lines = [f"# Split graph vs all-in-one ({res['date']})", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB, {m['os']}, "
             f"Python {m['python']}, onnxruntime {m['onnxruntime']}, git {m['git_commit']}.",
             f"Command: `{res['command']}`; camera 640x480 bgr8 30 fps, microphone 16 kHz, "
             f"hop {res['hop_s']} s.", "",
             "| graph | camera side -> decision side | microphone side -> decision side | "
             "window end -> estimate p50 / p95 / p99 | estimates |", "|---|---|---|---|---|"]
    for r in res["runs"]:
        cam = r["camera_side_to_decision_bytes_per_s"]
        what = "ModalityEstimate" if r["graph"] == "split" else "raw Image"
        mic = (f"{r['audio_estimate_bytes_per_s'] / 1e3:.2f} kB/s (ModalityEstimate)"
               if "audio_estimate_bytes_per_s" in r else "16 kHz PCM: ~32 kB/s + headers")
        lat = r["latency_ms"]
        cam_text = f"{cam / 1e6:.1f} MB/s" if cam > 1e5 else f"{cam / 1e3:.2f} kB/s"
        lines.append(f"| {r['graph']} | {cam_text} ({what}) | {mic} | "
                     f"{lat['p50']:.0f} / {lat['p95']:.0f} / {lat['p99']:.0f} ms | "
                     f"{r['estimates']}/{r['windows_expected']} |")
    lines += ["", f"Camera side bytes, all-in-one / split: **{res['camera_bytes_ratio']:.0f}x** "
              "(measured in one run each, same publisher). Message sizes: one frame "
              f"{res['runs'][0]['frame_message_bytes']} B; ModalityEstimate video at most "
              f"{res['runs'][1].get('video_estimate_message_bytes_max')} B, audio at most "
              f"{res['runs'][1].get('audio_estimate_message_bytes_max')} B."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.split_graph",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", type=Path, default=ROOT / "data" / "models" / "synthetic")
    ap.add_argument("--windows", type=int, default=40)
    ap.add_argument("--hop", type=float, default=0.5)
    ap.add_argument("--out", type=Path, default=RESULTS / "split_graph.md")
    args = ap.parse_args(argv)
    import datetime

    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from bench.machine import machine_info

    os.environ.update({"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_LOCALHOST_ONLY": "1"})
    os.environ.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 100 + 1))
    rclpy.init()
    node = rclpy.create_node("split_bench_recorder")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        runs = [run_graph(g, args.model_dir, windows=args.windows, hop_s=args.hop, node=node)
                for g in ("all_in_one", "split")]
    finally:
        stop.set()
        spinner.join(5)
        node.destroy_node()
        rclpy.shutdown()
    res = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "machine": machine_info(),
           "command": ("scripts/rosenv.sh python -m bench.split_graph " + " ".join(
               sys.argv[1:] if argv is None else argv)).strip(), "hop_s": args.hop, "runs": runs,
           "camera_bytes_ratio": runs[0]["camera_side_to_decision_bytes_per_s"]
           / runs[1]["camera_side_to_decision_bytes_per_s"]}
    text = render(res)
    sys.stdout.write(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
