"""Parameters of the ``bag_player`` node, and the command line that sets them.

``rate``, ``loop`` and ``paused`` may change while playing; the others are read at start-up.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .params import STRING_ARRAY, ParamSpec

__all__ = ["PARAMS", "build_parser", "player_args"]

PARAMS = (
    ParamSpec("bag_paths", None, "Bags to play in order (rosbag2 directories or .mcap / .db3 "
              "files).", read_only=True, kind=STRING_ARRAY),
    ParamSpec("topics", None, "Play only these topics (empty: all).", read_only=True,
              kind=STRING_ARRAY),
    ParamSpec("rate", 1.0, "Playback speed factor (1 = recorded speed); may change while playing.",
              range=(0.01, 100.0)),
    ParamSpec("loop", False, "Restart the playlist at its end; may change while playing."),
    ParamSpec("paused", False, "Hold playback (the clock stands still); set false to resume."),
    ParamSpec("publish_clock", False, "Publish /clock with the bag time, for use_sim_time nodes.",
              read_only=True),
    ParamSpec("clock_frequency", 100.0, "/clock messages per second (wall time).",
              range=(1.0, 1000.0), read_only=True),
    ParamSpec("start_delay_s", 0.0, "Wait this long (wall time) before playing.",
              range=(0.0, 3600.0), read_only=True),
    ParamSpec("wait_for_subscribers_s", 0.0, "Before playing, wait up to this long (wall time) "
              "until every camera and audio topic (every topic when there is none) has a "
              "subscriber (0: do not wait).",
              range=(0.0, 3600.0), read_only=True),
    ParamSpec("camera_qos", "sensor_data", "QoS of camera topics: sensor_data (BEST_EFFORT, "
              "KEEP_LAST 5) or reliable (KEEP_LAST 10; also serves reliable subscribers).",
              choices=("sensor_data", "reliable"), read_only=True),
)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description="publish rosbag2 bags with their original timing")
    ap.add_argument("bags", nargs="+", type=Path, help="rosbag2 directories or .mcap/.db3 files")
    ap.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    ap.add_argument("--loop", action="store_true", help="restart at the end")
    ap.add_argument("--clock", action="store_true", help="publish /clock from the bag time")
    ap.add_argument("--clock-frequency", type=float, default=100.0, help="/clock messages per s")
    ap.add_argument("--topics", nargs="+", default=[], help="play only these topics")
    ap.add_argument("--start-paused", action="store_true",
                    help="start paused (ros2 param set /bag_player paused false to play)")
    ap.add_argument("--delay", type=float, default=0.0, help="wait this long before playing, s")
    ap.add_argument("--wait-subscribers", type=float, default=0.0, metavar="S",
                    help="wait up to S s for a subscriber on every camera / audio topic")
    ap.add_argument("--camera-qos", choices=("sensor_data", "reliable"), default="sensor_data")
    ap.add_argument("--linger", type=float, default=3.0, metavar="S",
                    help="stay up S s after the end (latched done, advancing /clock)")
    return ap


def player_args(args: argparse.Namespace) -> list[str]:
    """ROS parameter arguments for the player from the parsed command line."""
    p = {"rate": repr(float(args.rate)), "loop": str(args.loop).lower(),
         "publish_clock": str(args.clock).lower(),
         "clock_frequency": repr(float(args.clock_frequency)),
         "paused": str(args.start_paused).lower(), "start_delay_s": repr(float(args.delay)),
         "wait_for_subscribers_s": repr(float(args.wait_subscribers)),
         "camera_qos": args.camera_qos}
    out = ["--ros-args"]
    for k, v in p.items():
        out += ["-p", f"{k}:={v}"]
    return out
