"""Start the perception graph in one process, from the same YAML the launch file uses.

For machines without ``ros2 launch``:

    python -m avemo_ros.ros.runner --params config/perception.yaml --model-dir BUNDLE \
        [--namespace robot1] [--remap image:=/camera/image_raw] [--file-source clip.mp4]

Like the launch file it autostarts the lifecycle node (configure, then activate) unless
``--no-autostart`` is given, and stops on Ctrl-C or when ``--duration`` has passed.
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Optional, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn

from .perception_node import PerceptionNode
from .compat import ros_context

log = logging.getLogger(__name__)
DEFAULT_PARAMS = Path(__file__).resolve().parents[2] / "config" / "perception.yaml"


def node_args(params_file: Optional[Path], overrides: dict[str, str], remaps: Sequence[str],
              use_sim_time: bool) -> list[str]:
    """ROS command-line arguments for one node (the launch file's equivalent)."""
    args = ["--ros-args"]
    if params_file:
        args += ["--params-file", str(params_file)]
    for k, v in overrides.items():
        args += ["-p", f"{k}:={v}"]
    if use_sim_time:
        args += ["-p", "use_sim_time:=true"]
    for r in remaps:
        args += ["-r", r]
    return args


def autostart(node: PerceptionNode) -> bool:
    """configure then activate, as the launch file's lifecycle events do."""
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        return False
    return node.trigger_activate() == TransitionCallbackReturn.SUCCESS


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description="avemo_ros perception graph in one process")
    ap.add_argument("--params", type=Path, default=DEFAULT_PARAMS, help="ROS parameters YAML")
    ap.add_argument("--model-dir", help="model bundle directory (overrides the YAML)")
    ap.add_argument("--backend", choices=("auto", "onnxruntime", "tensorrt"))
    ap.add_argument("--namespace", default="")
    ap.add_argument("--remap", action="append", default=[], metavar="FROM:=TO")
    ap.add_argument("--param", action="append", default=[], metavar="NAME:=VALUE",
                    help="perception_node parameter override (repeatable)")
    ap.add_argument("--use-sim-time", action="store_true")
    ap.add_argument("--no-autostart", action="store_true")
    ap.add_argument("--file-source", nargs="+", type=Path, metavar="MEDIA",
                    help="also play these media files as camera + microphone topics")
    ap.add_argument("--loop", action="store_true", help="loop the file source")
    ap.add_argument("--duration", type=float, default=0.0, help="stop after this many s (0: never)")
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    overrides = {}
    if args.model_dir:
        overrides["model_dir"] = str(Path(args.model_dir).resolve())
    if args.backend:
        overrides["backend"] = args.backend
    for item in args.param:
        name, sep, value = item.partition(":=")
        if not sep:
            log.error("--param %r: expected NAME:=VALUE", item)
            return 2
        overrides[name] = value
    try:
        with ros_context():
            executor = SingleThreadedExecutor()
            perception = PerceptionNode(
                namespace=args.namespace,
                cli_args=node_args(args.params, overrides, args.remap, args.use_sim_time))
            executor.add_node(perception)
            if args.file_source:
                from .file_source import FileSource

                paths = "[" + ",".join(f"'{p.resolve()}'" for p in args.file_source) + "]"
                source = FileSource(namespace=args.namespace, cli_args=node_args(
                    args.params, {"media_paths": paths, "loop": str(args.loop).lower()},
                    args.remap, args.use_sim_time))
                executor.add_node(source)
            if not args.no_autostart and not autostart(perception):
                log.error("perception_node did not configure/activate; see its log above")
                return 1
            deadline = time.monotonic() + args.duration if args.duration > 0 else None
            while rclpy.ok() and (deadline is None or time.monotonic() < deadline):
                executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
