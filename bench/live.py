"""Window end -> EmotionEstimate latency through DDS, with the node's CPU share and memory.

The perception node runs in its own process (the in-process runner, default YAML plus
``hop_s``); a second process (``bench.publisher``) publishes a 30 fps 640x480 bgr8 camera
and a 16 kHz microphone in real time; this process only records the estimates (receive
time on the system clock) and /diagnostics. Three processes, so neither the publisher
nor the recorder competes for the node's GIL.

The latency floor is the node's own ``critical_path`` (p50; /diagnostics): the work that
cannot start before a window's last audio sample (audio features, audio network, fusion,
publication); the video branch runs ahead, once the window's last frame is sampled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


from .timing import percentiles

NS = 1_000_000_000
HERE = Path(__file__).resolve().parent
PROFILE = HERE.parent / "config" / "fastdds_large_data.xml"
UNTUNED = {"FASTDDS_BUILTIN_TRANSPORTS": "DEFAULT"}  # "Fast DDS as it comes", said explicitly
GRAPH = "graph"  # the publisher gets what the launch file / runner choose (transport.choose)
#: name -> (what it is, node process env, publisher process env). Every row starts from
#: an environment without any Fast DDS setting of the user's.
TRANSPORTS = {
    "default": (
        "no setting: the runner's own choice in the node, the launch file's in the "
        "publisher",
        {},
        GRAPH,
    ),
    "external_camera": (
        "no setting; the runner tunes the node, the publisher (a camera driver "
        "started elsewhere) is Fast DDS as it comes",
        {},
        {},
    ),
    "untuned": (
        "Fast DDS as it comes in both (FASTDDS_BUILTIN_TRANSPORTS=DEFAULT; the "
        "old default)",
        UNTUNED,
        UNTUNED,
    ),
    "large_data": (
        "tuned by hand: FASTDDS_DEFAULT_PROFILES_FILE=config/fastdds_large_data.xml in both",
        {"FASTDDS_DEFAULT_PROFILES_FILE": str(PROFILE)},
        {"FASTDDS_DEFAULT_PROFILES_FILE": str(PROFILE)},
    ),
}


def _clean_env() -> dict:
    """This process's ROS environment without any Fast DDS transport setting."""
    from avemo_ros.ros import harness as h
    from avemo_ros.ros.transport import USER_VARS

    env = h.ros_env()
    for var in USER_VARS:
        env.pop(var, None)
    return env


def transport_envs(transport: str) -> tuple[str, dict, dict]:
    """(description, node env, publisher env) of a TRANSPORTS row, as full environments."""
    from avemo_ros.ros.transport import choose

    what, node_env, pub_env = TRANSPORTS[transport]
    base = _clean_env()
    node_full = {**base, **node_env}
    pub_full = {**base, **(choose(base, PROFILE).env if pub_env == GRAPH else pub_env)}
    return what, node_full, pub_full


def proc_stats(pid: int) -> dict:
    """CPU seconds (user + system), current and peak RSS (bytes) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    status = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            status[key] = int(value.split()[0]) * 1024
    return {"cpu_s": cpu, "rss": status.get("VmRSS", 0), "peak_rss": status.get("VmHWM", 0)}


def torch_loaded(pid: int) -> bool:
    """Whether the process has PyTorch's native library mapped (i.e. imported torch)."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return "libtorch" in maps or "/torch/_C" in maps


def _pick(summary: str, key: str = "p50") -> float:
    """``key`` (p50, p95, max) of a /diagnostics timing "p50 A p95 B max C" (ms), else NaN."""
    parts = summary.split()
    values = dict(zip(parts[::2], parts[1::2]))
    return float(values[key]) if key in values else float("nan")


def run_live(
    bundle: Path,
    *,
    windows: int = 50,
    hop_s: float = 0.5,
    transport: str = "default",
    node_params: tuple[str, ...] = (),
    recorder=None,
    extra_faces: int = 0,
    debug_subscriber: bool = False,
) -> dict:
    """One live run; ``recorder``: a harness.Recorder in this process (rclpy initialised).
    ``debug_subscriber``: the recorder also subscribes to the node's ~/debug_image."""
    from sensor_msgs.msg import Image

    from avemo_ros.ros import harness as h

    stream_s = 3.0 + windows * hop_s + 0.2
    what, node_env, pub_env = transport_envs(transport)
    recorder.clear()
    t_launch = time.monotonic()
    node = h.PerceptionProcess(bundle, f"hop_s:={hop_s}", *node_params, env=node_env)
    lag_file = Path(tempfile.mkstemp(prefix="avemo_pub_", suffix=".json")[1])
    pub = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.publisher",
            "--seconds",
            str(stream_s),
            "--json",
            str(lag_file),
            "--extra-faces",
            str(extra_faces),
        ],
        env=pub_env,
        cwd=str(HERE.parent),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    samples = []  # (time.time_ns(), proc_stats)
    debug_images: list = []
    debug_sub = (recorder.node.create_subscription(
        Image, "/perception_node/debug_image", lambda m: debug_images.append(m.width), 1)
        if debug_subscriber else None)
    try:
        deadline = time.monotonic() + stream_s + 180
        while pub.poll() is None and time.monotonic() < deadline:
            if node.proc.poll() is not None:
                raise RuntimeError("perception node exited:\n" + node.stop()[-3000:])
            samples.append((time.time_ns(), proc_stats(node.proc.pid)))
            time.sleep(0.25)
        if pub.poll() is None:
            pub.kill()
            raise RuntimeError("publisher did not finish in time")
        pub_out = pub.stdout.read() if pub.stdout else ""
        if pub.returncode != 0:
            raise RuntimeError(f"publisher failed ({pub.returncode}):\n{pub_out[-3000:]}")
        expected = int((stream_s - 3.0) / hop_s + 1e-9) + 1
        t_wait = time.monotonic() + 5.0
        while len(recorder.estimates) < expected and time.monotonic() < t_wait:
            time.sleep(0.1)
        time.sleep(1.2)  # one more /diagnostics period
        torch_in_node = torch_loaded(node.proc.pid)
        final = proc_stats(node.proc.pid)
        counters = recorder.last_counters()
    finally:
        if pub.poll() is None:
            pub.kill()
        node_log = node.stop()
        if debug_sub is not None:
            recorder.node.destroy_subscription(debug_sub)
    published = json.loads(lag_file.read_text())
    lag_file.unlink()
    base = published["base_ns"]
    # CPU share in steady state: from the first window end to the end of the stream
    steady = [(t, s) for t, s in samples if base + 3 * NS <= t <= base + int(stream_s * NS)]
    cpu_share = float("nan")
    if len(steady) >= 2:
        (t0, s0), (t1, s1) = steady[0], steady[-1]
        cpu_share = (s1["cpu_s"] - s0["cpu_s"]) / ((t1 - t0) / NS)
    got = [(rx, m) for rx, m in list(recorder.estimates)]
    floor = _pick(counters.get("critical_path_ms", ""))
    after_input = _pick(counters.get("complete_to_publish_ms", ""), "p95")
    sub_lat = [(rx - (m.header.stamp.sec * NS + m.header.stamp.nanosec)) / 1e6 for rx, m in got]
    pub_lat = [m.latency * 1e3 for _, m in got]
    compute = [m.inference_time * 1e3 for _, m in got]
    timing_keys = [k for k in counters if k.endswith("_ms")]
    node_transport = next(
        (line.split("]: ", 1)[-1] for line in node_log.splitlines() if "DDS transport:" in line),
        "",
    )
    fastdds = (
        "FASTDDS_DEFAULT_PROFILES_FILE",
        "FASTRTPS_DEFAULT_PROFILES_FILE",
        "FASTDDS_BUILTIN_TRANSPORTS",
    )
    return {
        "transport": transport,
        "faces_in_view": 1 + extra_faces,
        "debug_subscriber": debug_subscriber,
        "debug_images_received": len(debug_images),
        "transport_description": what,
        "node_transport": node_transport,
        "node_env": {k: node_env[k] for k in fastdds if k in node_env},
        "publisher_env": {k: pub_env[k] for k in fastdds if k in pub_env},
        "hop_s": hop_s,
        "stream_s": round(stream_s, 2),
        "node_params": list(node_params),
        "windows_expected": expected,
        "estimates_received": len(got),
        "windows_dropped": int(counters.get("windows_dropped", 0)),
        "latency_at_subscriber_ms": percentiles(sub_lat),
        "latency_at_publication_ms": percentiles(pub_lat),
        "window_compute_ms": percentiles(compute, (50, 95)),
        "node_breakdown_ms": {k[:-3]: counters[k] for k in timing_keys},
        "publisher_lag_ms": {
            k: percentiles(v, (50, 95, 99)) for k, v in published["lag_ms"].items()
        },
        "frames_published": published["frames"],
        "frames_received": int(counters.get("frames_received", 0)),
        "frames_lost_in_transport": int(counters.get("frames_lost", 0)),
        "frames_unused": int(counters.get("frames_unused", 0)),
        "audio_chunks_published": published["audio_chunks"],
        "audio_chunks_received": int(counters.get("audio_chunks_received", 0)),
        "audio_lost_in_transport": int(counters.get("audio_lost", 0)),
        "stream_start_to_first_estimate_s": round((min(rx for rx, _ in got) - base) / NS, 3)
        if got
        else None,
        "node_cpu_share_of_one_core": round(cpu_share, 3),
        "critical_path_floor_ms": floor,
        "latency_p95_over_floor": (round(percentiles(sub_lat)["p95"] / floor, 2)
                                   if floor and got else float("nan")),
        "complete_to_publish_p95_ms": after_input,
        "complete_to_publish_p95_over_floor": round(after_input / floor, 2) if floor else None,
        "face_detection_share_of_one_core": round(
            float(counters.get("face_detection_s", "nan")) / max(stream_s - 0.2, 1e-9), 3),
        "frames_prepared": int(counters.get("frames_prepared", 0)),
        "node_rss_mb": round(final["rss"] / 2**20, 1),
        "node_peak_rss_mb": round(
            max([final["peak_rss"]] + [s["peak_rss"] for _, s in samples]) / 2**20, 1
        ),
        "torch_in_node": torch_in_node,
        "modalities": sorted({int(m.modalities) for _, m in got}),
        "launch_to_end_s": round(time.monotonic() - t_launch, 1),
        "node_log_tail": node_log[-1500:],
    }
