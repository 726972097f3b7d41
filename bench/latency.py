"""Window-end -> EmotionEstimate latency through DDS, with a 30 fps camera + 16 kHz mic.

    scripts/rosenv.sh python bench/latency.py --model-dir data/models/synthetic --windows 60

The perception node runs in its own process (the in-process runner); this process
publishes 640x480 bgr8 frames at 30 fps and 32 ms AudioStamped chunks at 16 kHz in real
time (a held-out synthetic clip, looped with continuing stamps) and reads the estimates.
Prints p50/p95/p99 latency, time from activation to the first estimate, the node's CPU
share and peak RSS, and the machine it ran on.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import rclpy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # training.synthetic renders the clip

from avemo_ros.audio_features import resample  # noqa: E402
from avemo_ros.ros import conversions as conv  # noqa: E402
from avemo_ros.ros import harness as h  # noqa: E402

NS = 1_000_000_000


def proc_cpu_rss(pid: int) -> tuple[float, int]:
    """(user+system CPU seconds, resident set size in bytes) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return cpu, rss


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{platform.node()}: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", type=Path, default=ROOT / "data" / "models" / "synthetic")
    ap.add_argument("--windows", type=int, default=60)
    ap.add_argument("--hop", type=float, default=0.5)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    import audio_common_msgs.msg as acm
    from training.synthetic import render_clip

    frames, audio, rate = render_clip("happy", 20, duration_s=8.0, seed=5, size=(640, 480),
                                      intensity=2)
    audio = resample(audio, rate, 16000)
    rclpy.init()
    t_start = time.monotonic()
    proc = h.PerceptionProcess(args.model_dir, f"hop_s:={args.hop}")
    driver = h.Driver(acm.AudioStamped, name="latency_bench")
    try:
        if not driver.wait_subscribed(proc, 120):
            print("perception node never became active", file=sys.stderr)
            return 1
        ready_s = time.monotonic() - t_start
        cpu0, _ = proc_cpu_rss(proc.proc.pid)
        wall0 = time.monotonic()
        base = time.time_ns()
        total_s = 3.0 + args.windows * args.hop + 0.6
        clip_s = len(frames) / 30.0
        n_frames, chunk, peak_rss = int(total_s * 30), 512, 0
        chunk_s = chunk / 16000
        t0 = time.monotonic()
        fi, ai = 0, 0
        while fi < n_frames:
            t_frame, t_audio = fi / 30.0, ai * chunk_s
            t_next = min(t_frame, t_audio + chunk_s)  # an audio chunk is due at its end
            delay = t_next - (time.monotonic() - t0)
            if delay > 0:
                time.sleep(delay)
            if t_frame <= t_audio + chunk_s:
                rgb = frames[fi % len(frames)]
                driver.image_pub.publish(conv.rgb_to_image(rgb, base + int(t_frame * NS),
                                                           "camera", encoding="bgr8"))
                fi += 1
            else:
                a = int(round((t_audio % clip_s) * 16000))
                samples = audio[a:a + chunk]
                if len(samples) < chunk:
                    samples = np.concatenate([samples, audio[:chunk - len(samples)]])
                driver.audio_pub.publish(conv.chunk_to_audio_stamped(
                    samples, 16000, base + int(t_audio * NS), "microphone", acm))
                ai += 1
            if fi % 30 == 0:
                peak_rss = max(peak_rss, proc_cpu_rss(proc.proc.pid)[1])
        driver.wait_for(lambda: len(driver.estimates) >= args.windows, 5.0)
        cpu1, rss = proc_cpu_rss(proc.proc.pid)
        wall1 = time.monotonic()
        counters = driver.last_counters()
    finally:
        driver.close()
        proc.stop()
        rclpy.shutdown()
    msgs = [m for _, m in driver.estimates]
    lat = np.array([m.latency for m in msgs]) * 1e3
    inf = np.array([m.inference_time for m in msgs]) * 1e3
    res = {
        "machine": machine(),
        "windows": len(msgs),
        "hop_s": args.hop,
        "latency_ms": {q: round(float(np.percentile(lat, int(q[1:]))), 1) for q in ("p50", "p95", "p99")},
        "inference_ms_p50": round(float(np.percentile(inf, 50)), 1),
        "startup_to_active_s": round(ready_s, 2),
        "activation_to_first_estimate_s": float(counters.get("first_estimate_delay_s", "nan")),
        "node_cpu_share_of_one_core": round((cpu1 - cpu0) / (wall1 - wall0), 3),
        "node_peak_rss_mb": round(max(peak_rss, rss) / 2**20, 1),
        "modalities": sorted({int(m.modalities) for m in msgs}),
    }
    print(f"machine: {res['machine']}")
    print(f"{res['windows']} windows, hop {args.hop} s, 640x480 bgr8 @ 30 fps + 16 kHz int16 mic")
    print(f"window end -> EmotionEstimate latency: p50 {res['latency_ms']['p50']} ms, "
          f"p95 {res['latency_ms']['p95']} ms, p99 {res['latency_ms']['p99']} ms "
          f"(features + inference p50 {res['inference_ms_p50']} ms)")
    print(f"activation -> first estimate: {res['activation_to_first_estimate_s']:.2f} s "
          f"(the first 3 s window needs 3 s of input); process start -> active: "
          f"{res['startup_to_active_s']} s")
    print(f"perception node: {100 * res['node_cpu_share_of_one_core']:.0f}% of one core, "
          f"peak RSS {res['node_peak_rss_mb']} MB")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    return 0 if len(msgs) >= args.windows * 0.9 else 1


if __name__ == "__main__":
    raise SystemExit(main())
