"""The machine a benchmark ran on: CPU, cores, memory, OS, Python, library versions, commit."""
from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"') + f" (Linux {platform.release()})"
    except OSError:
        pass
    return platform.platform()


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=10", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' (+ uncommitted changes)' if dirty else ''}" if head else "unknown"


def load_average() -> tuple[float, float, float]:
    """1, 5, 15 minute load averages (other processes competing for the cores)."""
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def machine_info() -> dict:
    """Everything a reader needs to compare figures across machines."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": round(_ram_gib(), 1),
        "os": _os_name(),
        "python": platform.python_version(),
        "onnxruntime": _version("onnxruntime"),
        "torch": _version("torch"),
        "opencv": (_version("opencv-python-headless")
                   if _version("opencv-python") == "not installed"
                   else _version("opencv-python")),
        "numpy": _version("numpy"),
        "rmw": os.environ.get("RMW_IMPLEMENTATION") or "rmw_fastrtps_cpp (default)",
        "git_commit": _git_commit(),
        "hostname": platform.node(),
    }
