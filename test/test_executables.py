"""``ros2 run avemo_ros NAME`` exists for every node module with a main(), and runs.

Looks in the installed package (``<prefix of avemo_ros>/lib/avemo_ros``, where ``ros2 run``
looks), so it needs ``scripts/setup.sh`` (the colcon install) to have run.
"""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NODE_MODULES = ROOT / "avemo_ros" / "ros"
#: module -> executable name where they differ
EXECUTABLE = {"runner": "run_pipeline"}


def modules_with_main() -> list[str]:
    out = []
    for path in sorted(NODE_MODULES.glob("*.py")):
        tree = ast.parse(path.read_text())
        if any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body):
            out.append(path.stem)
    return out


def installed_lib() -> Path | None:
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_prefix
    except ImportError:
        return None
    try:
        return Path(get_package_prefix("avemo_ros")) / "lib" / "avemo_ros"
    except PackageNotFoundError:
        return None


LIB = installed_lib()
needs_install = pytest.mark.skipif(
    LIB is None or not LIB.is_dir(),
    reason="avemo_ros is not installed: run scripts/setup.sh (and scripts/rosenv.sh)",
)


def test_every_main_has_a_script_listed_in_cmake():
    mains = modules_with_main()
    assert {
        "perception_node",
        "audio_node",
        "video_node",
        "fusion_node",
        "file_source",
        "bag_player",
        "eval_recorder",
        "replay",
        "demo",
        "runner",
    } <= set(mains)
    cmake = (ROOT / "CMakeLists.txt").read_text()
    block = re.search(r"install\(PROGRAMS(.*?)DESTINATION", cmake, re.S).group(1)
    listed = set(re.findall(r"scripts/(\w+)", block))
    for module in mains:
        name = EXECUTABLE.get(module, module)
        script = ROOT / "scripts" / name
        assert script.is_file() and os.access(script, os.X_OK), f"scripts/{name} missing"
        assert f"from avemo_ros.ros.{module} import main" in script.read_text(), name
        assert script.read_text().startswith("#!/usr/bin/env python3"), name
        assert name in listed, f"scripts/{name} is not in install(PROGRAMS ...)"


@needs_install
@pytest.mark.parametrize("module", modules_with_main())
def test_installed(module):
    name = EXECUTABLE.get(module, module)
    exe = LIB / name
    assert exe.is_file() and os.access(exe, os.X_OK), (
        f"{exe} not installed: rerun scripts/setup.sh"
    )
    assert exe.read_text() == (ROOT / "scripts" / name).read_text(), f"{exe} is stale: rebuild"


def _env() -> dict:
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_LOCALHOST_ONLY="1")
    env.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 100 + 1))
    return env


NODES = ("perception_node", "audio_node", "video_node", "fusion_node", "file_source")
ARGPARSE = [m for m in modules_with_main() if m not in NODES]


@needs_install
@pytest.mark.parametrize("module", ARGPARSE)
def test_help(module):
    exe = LIB / EXECUTABLE.get(module, module)
    done = subprocess.run(
        [sys.executable, str(exe), "--help"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout


def _start_and_interrupt(cmd: list[str], ready, timeout: float = 60.0) -> tuple[int, str]:
    """Run ``cmd`` until ``ready`` (a text in its output, or a callable) holds, then SIGINT;
    (returncode, output)."""
    import threading

    proc = subprocess.Popen(
        cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    out: list[str] = []
    reader = threading.Thread(
        target=lambda: out.extend(iter(proc.stdout.readline, "")), daemon=True
    )
    reader.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if ready(proc) if callable(ready) else ready in "".join(out):
                break
            time.sleep(0.1)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(5)
    return proc.returncode, "".join(out)


@needs_install
def test_perception_node_starts_and_stops():
    """It comes up unconfigured (lifecycle calls come from outside) and stops on SIGINT."""
    rclpy = pytest.importorskip("rclpy")
    from rclpy.context import Context

    ctx = Context()
    rclpy.init(args=[], context=ctx)
    probe = rclpy.create_node("exe_test_probe", context=ctx)
    name = f"exe_test_perception_{os.getpid()}"
    seen = []

    def up(_proc) -> bool:
        if (name, "/") in probe.get_node_names_and_namespaces():
            seen.append(True)
        return bool(seen)

    try:
        rc, out = _start_and_interrupt(
            [
                sys.executable,
                str(LIB / "perception_node"),
                "--ros-args",
                "-r",
                f"__node:={name}",
                "-p",
                "hop_s:=0.5",
            ],
            ready=up,
        )
    finally:
        probe.destroy_node()
        rclpy.try_shutdown(context=ctx)
    assert seen, out[-3000:]
    assert rc == 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]


@needs_install
def test_file_source_plays_a_wav(tmp_path):
    import wave

    import numpy as np

    clip = tmp_path / "tone.wav"
    with wave.open(str(clip), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.sin(np.arange(4800) / 5) * 8000).astype("<i2").tobytes())
    rc, out = _start_and_interrupt(
        [
            sys.executable,
            str(LIB / "file_source"),
            "--ros-args",
            "-r",
            f"__ns:=/exe_test_{os.getpid()}",
            "--params-file",
            str(LIB.parents[1] / "share" / "avemo_ros" / "config" / "perception.yaml"),
            "-p",
            f"media_paths:=['{clip}']",
        ],
        ready="playlist finished",
    )
    assert "playlist finished" in out, out[-3000:]
    assert rc == 0, out[-3000:]
