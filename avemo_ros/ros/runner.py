"""Start the perception graph in one process, from the same YAML the launch file uses.

For machines without ``ros2 launch`` (``ros2 run avemo_ros run_pipeline`` runs this too):

    python -m avemo_ros.ros.runner --model-dir BUNDLE [--params config/perception.yaml] \
        [--namespace robot1] [--image /camera/image_raw] [--audio /audio/audio_stamped] \
        [--audio-info /audio/audio_info] [--remap FROM:=TO] [--param NAME:=VALUE] \
        [--file-source clip.mp4 [--loop]] [--ros-args ...]

What the launch file does, the runner does the same way:

- topics default to the launch file's (``avemo_ros.ros.graph.TOPICS``: the camera on
  ``image``, ros-drivers audio_capture's ``/audio/audio_stamped`` and ``/audio/audio_info``);
  the node parameters come from the YAML, then from ``graph.perception_parameters`` (a
  parameters file like the one launch_ros writes), then ``--param``;
- before ``rclpy.init`` it picks the Fast DDS transport (``avemo_ros.ros.transport``: the
  shipped large-data profile unless the user configured Fast DDS or runs another RMW),
  sets it in its environment (so processes it starts inherit it) and logs the choice;
- autostart moves perception_node through its lifecycle from outside, over the
  ``<node>/change_state`` and ``<node>/get_state`` services (configure, then activate
  once configure succeeded), like launch's lifecycle events or a lifecycle manager;
  ``--no-autostart`` leaves the node unconfigured for your own lifecycle manager. A later
  manual ``deactivate`` is left alone.

``--graph split`` starts the split graph instead (audio_node, video_node, fusion_node;
``--split-nodes`` a subset): one node runs in this process as above; several run as
separate processes (this runner again, one node each, ``--no-autostart``), whose
lifecycles this process drives over their services, fusion first, then plays the file
source once all are active (:mod:`avemo_ros.ros.split_processes`).

Everything else runs in this process: the nodes (perception_node, file_source, and a small
client node for the lifecycle calls) spin in one SingleThreadedExecutor on a background
thread, while the main thread makes the service calls and waits. The runner's own
options never reach rclpy; ``--ros-args ...`` at the end of the command line is given to
``rclpy.init`` (global ROS arguments of every node here). It stops on Ctrl-C or after
``--duration`` seconds.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional, Sequence

from . import graph, transport

log = logging.getLogger("avemo_ros.runner")


def _default_params() -> Path:
    checkout = Path(__file__).resolve().parents[2] / "config" / "perception.yaml"
    if checkout.is_file():
        return checkout
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("avemo_ros")) / "config" / "perception.yaml"
    except Exception:
        return checkout


DEFAULT_PARAMS = _default_params()


def node_args(
    params_file: Optional[Path],
    overrides: dict[str, str],
    remaps: Sequence[str],
    use_sim_time: bool,
    *,
    params_files: Sequence[Path] = (),
) -> list[str]:
    """ROS command-line arguments for one node (the launch file's equivalent).

    Order of precedence, lowest first: ``params_file`` (the YAML), ``params_files``
    (typed parameter files such as :func:`write_params`), ``overrides`` (``-p NAME:=VALUE``,
    typed by YAML rules), ``use_sim_time``. Remap rules: the first that matches wins.
    """
    args = ["--ros-args"]
    if params_file:
        args += ["--params-file", str(params_file)]
    for extra in params_files:
        args += ["--params-file", str(extra)]
    for k, v in overrides.items():
        args += ["-p", f"{k}:={v}"]
    if use_sim_time:
        args += ["-p", "use_sim_time:=true"]
    for r in remaps:
        args += ["-r", r]
    return args


def write_params(directory: Path, name: str, params: dict) -> Path:
    """``params`` as a ROS parameters file in ``directory`` (as launch_ros writes them)."""
    path = Path(directory) / f"{name}.yaml"
    path.write_text(graph.params_file_text(params))
    return path


def autostart(node) -> bool:
    """configure then activate an in-process node object directly (no services).

    Kept for :mod:`avemo_ros.ros.replay`, which configures its node before anything
    spins. The runner itself drives the node over its lifecycle services
    (:class:`avemo_ros.ros.lifecycle_client.LifecycleClient`).
    """
    from rclpy.lifecycle import TransitionCallbackReturn

    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        return False
    return node.trigger_activate() == TransitionCallbackReturn.SUCCESS


def build_parser() -> argparse.ArgumentParser:
    t = graph.TOPICS
    ap = argparse.ArgumentParser(
        prog="run_pipeline",
        description="avemo_ros perception graph in one process (what "
        "perception.launch.py starts, without ros2 launch)",
        epilog="Arguments after --ros-args go to rclpy.init (global ROS arguments).",
    )
    ap.add_argument("--params", type=Path, default=DEFAULT_PARAMS, help="ROS parameters YAML")
    ap.add_argument("--model-dir", help="model bundle directory (overrides the YAML)")
    ap.add_argument("--backend", choices=("auto", "onnxruntime", "tensorrt"))
    ap.add_argument("--namespace", default="", help="namespace of the nodes")
    ap.add_argument("--image", default=t["image"], help=f"camera topic (default {t['image']})")
    ap.add_argument("--audio", default=t["audio"], help=f"microphone topic (default {t['audio']})")
    ap.add_argument(
        "--audio-info",
        default=t["audio_info"],
        help=f"microphone AudioInfo topic (default {t['audio_info']})",
    )
    ap.add_argument(
        "--emotion", default=t["emotion"], help=f"output topic (default {t['emotion']})"
    )
    ap.add_argument(
        "--graph",
        choices=graph.GRAPHS,
        default="all_in_one",
        help="all_in_one: perception_node; split: audio_node + video_node + fusion_node",
    )
    ap.add_argument(
        "--split-nodes",
        default=",".join(graph.SPLIT_NODES),
        metavar="LIST",
        help="--graph split: which of audio,video,fusion to start (comma-separated; "
        "several: one process each)",
    )
    for name in ("audio_estimate", "video_estimate"):
        ap.add_argument(
            f"--{name.replace('_', '-')}",
            default=t[name],
            help=f"--graph split: {name} topic (default {t[name]})",
        )
    ap.add_argument(
        "--remap",
        action="append",
        default=[],
        metavar="FROM:=TO",
        help="extra remap rule for both nodes (repeatable; wins over the topic options)",
    )
    ap.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME:=VALUE",
        help="perception_node parameter override (repeatable)",
    )
    ap.add_argument("--use-sim-time", action="store_true")
    ap.add_argument(
        "--no-autostart",
        action="store_true",
        help="leave perception_node unconfigured (a lifecycle manager drives it)",
    )
    ap.add_argument(
        "--lifecycle-timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="seconds to wait for each lifecycle service call",
    )
    ap.add_argument(
        "--file-source",
        nargs="+",
        type=Path,
        metavar="MEDIA",
        help="also play these media files as camera + microphone topics",
    )
    ap.add_argument("--loop", action="store_true", help="loop the file source")
    ap.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many s (0: never)"
    )
    return ap


def _spin(executor, stop: threading.Event) -> None:
    from rclpy.executors import ExternalShutdownException

    try:
        while not stop.is_set() and executor.context.ok():
            executor.spin_once(timeout_sec=0.1)
    except (ExternalShutdownException, KeyboardInterrupt):
        pass
    except Exception:  # a callback raised: log it, the main thread notices the stop
        if executor.context.ok() and not stop.is_set():  # not the shutdown racing spin_once
            log.exception("executor stopped")
    finally:
        stop.set()


def main(argv: Optional[Sequence[str]] = None) -> int:
    own, ros_args = graph.split_ros_args(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(own)
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] [%(name)s]: %(message)s")
    overrides = {}
    for item in args.param:
        name, sep, value = item.partition(":=")
        if not sep:
            log.error("--param %r: expected NAME:=VALUE", item)
            return 2
        overrides[name] = value
    # before rclpy.init: the participant reads its transport when it is created
    log.info("%s", transport.apply().message)

    from .compat import ros_context

    try:
        executables = graph.graph_nodes(args.graph, args.split_nodes)
    except ValueError as e:
        log.error("%s", e)
        return 2
    remaps = list(args.remap) + graph.remap_args(
        graph.remappings(
            args.image,
            args.audio,
            args.audio_info,
            args.emotion,
            args.audio_estimate,
            args.video_estimate,
        )
    )
    graph_params = graph.perception_parameters(
        Path(args.model_dir).resolve() if args.model_dir else "",
        args.backend or "auto",
        args.use_sim_time,
    )
    if not args.model_dir:
        del graph_params["model_dir"]  # the YAML's
    if not args.backend:
        del graph_params["backend"]
    try:
        with (
            tempfile.TemporaryDirectory(prefix="avemo_runner_") as tmp,
            ros_context(ros_args) as context,
        ):
            return _run(args, Path(tmp), context, overrides, remaps, graph_params, executables,
                        ros_args)
    except KeyboardInterrupt:
        return 0


def _run(
    args,
    tmp: Path,
    context,
    overrides: dict,
    remaps: list,
    graph_params: dict,
    executables: Sequence[str],
    ros_args: Sequence[str],
) -> int:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from . import split_processes
    from .lifecycle_client import LifecycleClient, LifecycleError

    nodes: list = []
    stop = threading.Event()
    spinner = None
    children = perception = None
    executor = SingleThreadedExecutor(context=context)
    try:
        if len(executables) == 1:
            name = executables[0]
            sections = []  # audio_node / video_node: perception_node's YAML section first
            if name in graph.PERCEPTION_LIKE and args.params:
                sections = [write_params(tmp, "section", graph.perception_section(args.params))]
            perception = split_processes.NODE_CLASSES[name]()(
                namespace=args.namespace,
                cli_args=node_args(
                    None,
                    overrides,
                    remaps,
                    args.use_sim_time,
                    params_files=[
                        *sections,
                        *([args.params] if args.params else []),
                        write_params(tmp, name, graph_params),
                    ],
                ),
            )
            nodes.append(perception)
            targets = [perception.get_fully_qualified_name()]
        else:
            children = split_processes.Children(args, executables, ros_args)
            targets = children.targets
        source = None
        if args.file_source:
            from .file_source import FileSource

            source = FileSource(
                namespace=args.namespace,
                cli_args=node_args(
                    args.params,
                    {},
                    remaps,
                    False,
                    params_files=[
                        write_params(
                            tmp,
                            "file_source",
                            graph.file_source_parameters(
                                [str(p.resolve()) for p in args.file_source],
                                args.use_sim_time,
                                loop=args.loop,
                            ),
                        )
                    ],
                ),
            )
            nodes.append(source)
        client_node = rclpy.create_node(
            "avemo_runner", namespace=args.namespace, start_parameter_services=False
        )
        nodes.append(client_node)
        if perception is not None:  # (the split graph's nodes run in their own processes)
            executor.add_node(perception)
        executor.add_node(client_node)
        if source is not None and args.no_autostart:
            executor.add_node(source)
        spinner = threading.Thread(
            target=_spin, args=(executor, stop), name="runner_spin", daemon=True
        )
        spinner.start()
        if not args.no_autostart:
            for target in targets:  # the fusion node first: it misses no half
                lifecycle = LifecycleClient(client_node, target)
                try:
                    ok, what = lifecycle.autostart(args.lifecycle_timeout)
                except LifecycleError as e:
                    ok, what = False, str(e)
                if not ok:
                    log.error("autostart: %s; see the node's log above", what)
                    return 1
                log.info("autostart: %s", what)
            if source is not None:  # play once the nodes listen
                executor.add_node(source)
        deadline = time.monotonic() + args.duration if args.duration > 0 else None
        while (
            not stop.is_set()
            and context.ok()
            and (deadline is None or time.monotonic() < deadline)
        ):
            if children is not None and children.exited():
                log.error("%s; stopping", children.exited())
                return 1
            stop.wait(0.1)
        return 0
    finally:
        if children is not None:
            children.stop()
        stop.set()
        if spinner is not None:
            spinner.join(5.0)
        executor.shutdown(timeout_sec=1.0)
        for node in reversed(nodes):
            node.destroy_node()


if __name__ == "__main__":
    raise SystemExit(main())
