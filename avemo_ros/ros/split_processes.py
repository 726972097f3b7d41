"""The runner's split graph: each node of ``--graph split`` in its own process.

Every child is the runner again with one node (``--split-nodes NAME --no-autostart``) and
the parent's options (without the file source, which the parent plays); the parent drives
the children's lifecycles over their services, as launch or a lifecycle manager would,
and stops them (SIGINT, then SIGKILL) when it stops.
"""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence


def _perception() -> type:
    from .perception_node import PerceptionNode
    return PerceptionNode


def _audio() -> type:
    from .modality_node import AudioNode
    return AudioNode


def _video() -> type:
    from .modality_node import VideoNode
    return VideoNode


def _fusion() -> type:
    from .fusion_node import FusionNode
    return FusionNode


#: Executable name -> a function returning its node class (imported on use).
NODE_CLASSES: dict[str, Callable[[], type]] = {
    "perception_node": _perception, "audio_node": _audio, "video_node": _video,
    "fusion_node": _fusion}


def child_command(args: Any, executable: str, ros_args: Sequence[str]) -> list[str]:
    """The runner command line that runs ``executable`` alone with ``args``' options."""
    cmd = [sys.executable, "-m", "avemo_ros.ros.runner", "--graph", "split", "--split-nodes",
           executable.removesuffix("_node"), "--no-autostart", "--namespace", args.namespace,
           "--lifecycle-timeout", str(args.lifecycle_timeout)]
    if args.params:
        cmd += ["--params", str(args.params)]
    if args.model_dir:
        cmd += ["--model-dir", str(Path(args.model_dir).resolve())]
    if args.backend:
        cmd += ["--backend", args.backend]
    for option in ("image", "audio", "audio_info", "emotion", "audio_estimate",
                   "video_estimate"):
        cmd += [f"--{option.replace('_', '-')}", getattr(args, option)]
    for item in args.remap:
        cmd += ["--remap", item]
    for item in args.param:
        cmd += ["--param", item]
    if args.use_sim_time:
        cmd.append("--use-sim-time")
    return cmd + list(ros_args)


class Children:
    """One runner process per node of ``executables``; ``targets``: their fully qualified
    names in the order to bring them up (the fusion node first)."""

    def __init__(self, args: Any, executables: Sequence[str], ros_args: Sequence[str]):
        order = sorted(executables, key=lambda e: e != "fusion_node")
        ns = "/" + args.namespace.strip("/") if args.namespace.strip("/") else ""
        self.targets = [f"{ns}/{e}" for e in order]
        self.procs: dict[str, subprocess.Popen] = {}
        try:
            for e in order:
                self.procs[e] = subprocess.Popen(child_command(args, e, ros_args))
        except Exception:
            self.stop()
            raise

    def exited(self) -> Optional[str]:
        """Which child has exited, and how (None while all run)."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                return f"{name} exited with {proc.returncode}"
        return None

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGINT every child, then SIGKILL those still running after ``timeout_s``."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs.values():
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
