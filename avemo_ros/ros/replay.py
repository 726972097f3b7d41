"""Live replay in one process: bag_player -> perception_node -> eval_recorder -> report.

    python -m avemo_ros.ros.replay BAG... --model-dir DIR --out DIR [--rate 1] [--sim-time]
        [--hop 1.0] [--backend auto] [--param NAME:=VALUE] [--grace 3]

The perception node starts from ``config/perception.yaml`` like the runner does, with its
inputs remapped to the bags' camera and microphone topics (and ``image_transport`` /
``audio_msg_type`` set from their types), and is configured and activated before the
player starts. The player waits for the node's subscriptions, plays the bags once and
latches ``done``; once no estimate came for ``--grace`` seconds after that, the recorder
writes the report (the same files as the offline evaluation) and the summary is printed.

Latency is arrival minus window end in bag time: with ``--sim-time`` every node runs on
the player's ``/clock``; without it the recorder reads the bag time the player is at.
"""
from __future__ import annotations

import argparse
import logging
import threading
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

from ..bags import AUDIO_INFO, COMPRESSED_TYPE, BagError, bag_info, read_messages
from .bag_player import BagPlayer, BagPlayerError
from .eval_recorder import EvalRecorder, EvalRecorderError, summary_line
from .perception_node import PerceptionNode
from .runner import DEFAULT_PARAMS, autostart, node_args
from .compat import ros_context

log = logging.getLogger(__name__)

__all__ = ["Replay", "ReplayError", "main", "stream_settings"]

_AUDIO_MSG = {"audio_common_msgs/msg/AudioStamped": "AudioStamped",
              "audio_common_msgs/msg/AudioDataStamped": "AudioDataStamped",
              "audio_common_msgs/msg/AudioData": "AudioData"}


class ReplayError(ValueError):
    """The replay cannot start (bags without streams, bags that disagree, node failure)."""


def stream_settings(bag_paths: Sequence[str]) -> tuple[list[str], dict[str, str], list[str]]:
    """(topics to play, perception_node parameters, perception_node remaps) for the bags.

    All bags must use the same camera and microphone topics and types.
    """
    found = set()
    info = None
    for path in bag_paths:
        try:
            info = bag_info(path)
        except BagError as exc:
            raise ReplayError(str(exc)) from exc
        cam, mic = info.camera_topic, info.audio_topic
        found.add((cam, info.topics.get(cam), mic, info.topics.get(mic)))
    if len(found) != 1:
        raise ReplayError("the bags use different camera/microphone topics or types: "
                          f"{sorted(found, key=str)}")
    cam, cam_type, mic, mic_type = found.pop()
    if cam is None and mic is None:
        raise ReplayError(f"{bag_paths[0]}: neither a camera nor an audio_common_msgs topic")
    params: dict[str, str] = {}
    remaps: list[str] = []
    topics = [t for t in (cam, mic) if t]
    if cam:
        compressed = cam_type == COMPRESSED_TYPE
        params["image_transport"] = "compressed" if compressed else "raw"
        remaps.append(f"{'image/compressed' if compressed else 'image'}:={cam}")
    if mic:
        params["audio_msg_type"] = _AUDIO_MSG[mic_type]
        remaps.append(f"audio:={mic}")
        if mic_type != "audio_common_msgs/msg/AudioStamped":
            params.update(_legacy_audio_params(bag_paths[0], info.topics))
    return topics, params, remaps


def _legacy_audio_params(path: str, topics: dict[str, str]) -> dict[str, str]:
    """Sample format, channels and rate of legacy audio from the bag's AudioInfo, if any."""
    for topic, msgtype in topics.items():
        if msgtype != AUDIO_INFO:
            continue
        for m in read_messages(path, [topic]):
            if hasattr(m.msg, "sample_format"):
                return {"audio_sample_format": str(m.msg.sample_format),
                        "audio_channels": str(int(m.msg.channels)),
                        "audio_sample_rate": str(int(m.msg.sample_rate))}
    log.warning("%s: legacy audio without an AudioInfo: perception_node's audio parameters apply",
                path)
    return {}


class Replay:
    """The three nodes of a live replay, started and wired; :meth:`run` plays and reports."""

    def __init__(self, bag_paths: Sequence[str], model_dir: str, out_dir: Optional[str], *,
                 rate: float = 1.0, sim_time: bool = False, hop_s: Optional[float] = None,
                 backend: Optional[str] = None, params: Optional[dict[str, str]] = None,
                 grace_s: float = 3.0, params_file: Optional[Path] = DEFAULT_PARAMS,
                 camera_qos: str = "sensor_data"):
        topics, overrides, remaps = stream_settings([str(p) for p in bag_paths])
        overrides["model_dir"] = str(Path(model_dir).resolve())
        if hop_s is not None:
            overrides["hop_s"] = repr(float(hop_s))
        if backend:
            overrides["backend"] = backend
        overrides.update(params or {})
        self.nodes: list[Any] = []
        self.rate, self.sim_time = rate, sim_time
        self.perception = PerceptionNode(
            cli_args=node_args(params_file, overrides, remaps, sim_time))
        self.nodes.append(self.perception)
        if not autostart(self.perception):
            self.close()
            raise ReplayError("perception_node did not configure/activate; see its log above")
        holder: dict[str, BagPlayer] = {}
        self.recorder = EvalRecorder(
            bag_paths=[str(p) for p in bag_paths], out_dir=out_dir,
            now_ns=None if sim_time else (lambda: holder["player"].bag_time_ns()),
            report_extra=self.extra,
            cli_args=["--ros-args", "-p", f"grace_s:={float(grace_s)!r}", "-p",
                      f"use_sim_time:={str(sim_time).lower()}"])
        self.nodes.append(self.recorder)
        self.player = BagPlayer(bag_paths=[str(p) for p in bag_paths], topics=topics, cli_args=[
            "--ros-args", "-p", f"rate:={float(rate)!r}",
            "-p", f"publish_clock:={str(sim_time).lower()}",
            "-p", "wait_for_subscribers_s:=30.0", "-p", "start_delay_s:=0.5",
            "-p", f"camera_qos:={camera_qos}"])
        holder["player"] = self.player
        self.nodes.append(self.player)

    def run(self, timeout_s: Optional[float] = None) -> Optional[dict]:
        """Spin until the recorder has written its report (or ``timeout_s``); returns the report.

        The perception node spins on the calling thread, player and recorder on another, so
        inference does not delay the recorder's arrival times.
        """
        if timeout_s is None:
            timeout_s = self.player.span_ns / 1e9 / self.rate + 60.0
        main_ex, side_ex = SingleThreadedExecutor(), SingleThreadedExecutor()
        main_ex.add_node(self.perception)
        side_ex.add_node(self.recorder)
        side_ex.add_node(self.player)
        stop = threading.Event()

        def spin_side() -> None:
            while not stop.is_set() and rclpy.ok():
                side_ex.spin_once(timeout_sec=0.05)

        side = threading.Thread(target=spin_side, name="replay_side", daemon=True)
        side.start()
        deadline = time.monotonic() + timeout_s
        try:
            while rclpy.ok() and not self.recorder.finished and time.monotonic() < deadline:
                main_ex.spin_once(timeout_sec=0.05)
        except (KeyboardInterrupt, ExternalShutdownException):
            log.warning("interrupted: reporting what arrived")
        finally:
            stop.set()
            side.join(5.0)
            main_ex.shutdown()
            side_ex.shutdown()
        if not self.recorder.finished:
            log.warning("replay did not finish within %.0f s: reporting what arrived", timeout_s)
        return self.recorder.finish()

    def extra(self) -> dict[str, Any]:
        """Replay settings for the report."""
        player = getattr(self, "player", None)
        return {"rate": self.rate, "sim_time": self.sim_time,
                "hop_s": self.perception.get_parameter("hop_s").value,
                "published": dict(player.published) if player else {}}

    def close(self) -> None:
        """Destroy the nodes (the player's thread stops)."""
        for node in reversed(self.nodes):
            node.destroy_node()
        self.nodes.clear()


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description="replay bags live through perception_node and report")
    ap.add_argument("bags", nargs="+", type=Path, help="rosbag2 bags (directories or .mcap/.db3)")
    ap.add_argument("--model-dir", required=True, type=Path, help="model bundle")
    ap.add_argument("--out", required=True, type=Path, help="report directory")
    ap.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    ap.add_argument("--sim-time", action="store_true", help="all nodes on the player's /clock")
    ap.add_argument("--hop", type=float, help="perception_node hop_s (default: the YAML's)")
    ap.add_argument("--backend", choices=("auto", "onnxruntime", "tensorrt"))
    ap.add_argument("--params", type=Path, default=DEFAULT_PARAMS, help="ROS parameters YAML")
    ap.add_argument("--param", action="append", default=[], metavar="NAME:=VALUE",
                    help="perception_node parameter override (repeatable)")
    ap.add_argument("--grace", type=float, default=3.0,
                    help="after the player's done, report once no estimate came for this many s")
    ap.add_argument("--camera-qos", choices=("sensor_data", "reliable"), default="sensor_data")
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point: prints the summary line and where the report is."""
    import sys

    from .graph import split_ros_args

    own, ros_args = split_ros_args(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(own)
    logging.basicConfig(level=logging.INFO)
    if not args.rate > 0:
        log.error("--rate must be > 0, got %s", args.rate)
        return 2
    params = {}
    for item in args.param:
        name, sep, value = item.partition(":=")
        if not sep:
            log.error("--param %r: expected NAME:=VALUE", item)
            return 2
        params[name] = value
    report = None
    try:
        with ros_context(ros_args):
            try:
                replay = Replay([str(b) for b in args.bags], str(args.model_dir), str(args.out),
                                rate=args.rate, sim_time=args.sim_time, hop_s=args.hop,
                                backend=args.backend, params=params, grace_s=args.grace,
                                params_file=args.params, camera_qos=args.camera_qos)
            except (ReplayError, BagPlayerError, EvalRecorderError, ValueError) as exc:
                log.error("%s", exc)
                return 1
            try:
                report = replay.run()
            finally:
                replay.close()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    if report is None:
        log.error("no report: no estimate arrived")
        return 1
    print(summary_line(report))
    print(f"report: {args.out / 'report.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
