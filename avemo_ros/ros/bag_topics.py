"""What ``bag_player`` plays: the bags of a playlist, their message classes and QoS.

QoS per type: camera types (``sensor_msgs/Image``, ``CompressedImage``, ``CameraInfo``)
get sensor-data QoS (BEST_EFFORT, KEEP_LAST 5; ``camera_qos:=reliable`` for reliable
subscribers), audio types (``audio_common_msgs/*``) RELIABLE KEEP_LAST 200, everything
else RELIABLE KEEP_LAST 10. Types resolve by name through importlib
(``sensor_msgs/msg/Image`` -> ``sensor_msgs.msg.Image``).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

__all__ = ["BagPlayerError", "CAMERA_TYPES", "CLOCK_QOS", "LATCHED_QOS", "PlaylistBag",
           "QOS_BY_KIND", "message_class", "qos_for_type", "scan_bag"]


class BagPlayerError(ValueError):
    """The player cannot start (no bag, unreadable bag, nothing playable)."""


CAMERA_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage",
                "sensor_msgs/msg/CameraInfo")
AUDIO_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=200,
                       reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.VOLATILE)
DEFAULT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                         reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE)
RELIABLE_CAMERA_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                                 reliability=ReliabilityPolicy.RELIABLE,
                                 durability=DurabilityPolicy.VOLATILE)
CLOCK_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                       reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.VOLATILE)
LATCHED_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                         reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
#: QoS by kind of topic (see :func:`qos_for_type`).
QOS_BY_KIND = {"camera": qos_profile_sensor_data, "camera_reliable": RELIABLE_CAMERA_QOS,
               "audio": AUDIO_QOS, "other": DEFAULT_QOS}


def message_class(msgtype: str) -> type:
    """Installed message class for a type name (``pkg/msg/Name`` or ``pkg/Name``).

    Raises ImportError / AttributeError (with the reason) when it is not installed.
    """
    parts = msgtype.strip("/").split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or not all(parts):
        raise ImportError(f"not a message type name: {msgtype!r}")
    module = importlib.import_module(f"{parts[0]}.{parts[1]}")
    cls = getattr(module, parts[2], None)
    if cls is None:
        raise AttributeError(f"{parts[0]}.{parts[1]} has no {parts[2]}")
    return cls


def qos_for_type(msgtype: str, camera_qos: str = "sensor_data") -> QoSProfile:
    """The QoS a topic of ``msgtype`` is republished with (see the module docstring)."""
    if msgtype in CAMERA_TYPES:
        return QOS_BY_KIND["camera" if camera_qos == "sensor_data" else "camera_reliable"]
    if msgtype.startswith("audio_common_msgs/"):
        return QOS_BY_KIND["audio"]
    return QOS_BY_KIND["other"]


@dataclass
class PlaylistBag:
    """A bag of the playlist: path, log-time span and topics."""

    path: Path
    start_ns: int  # log time of the first message
    end_ns: int  # log time of the last message
    topics: dict[str, str]  # topic -> msgtype

    @property
    def span_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)


def open_reader(path: Path):
    """A rosbags Reader of ``path`` (use it as a context manager)."""
    from rosbags.rosbag2 import Reader

    return Reader(path)


def scan_bag(path: Path) -> PlaylistBag:
    """Time range and topics of a bag. Raises BagPlayerError when it cannot be read."""
    if not path.exists():
        raise BagPlayerError(f"bag {path} does not exist")
    try:
        with open_reader(path) as reader:
            if reader.message_count == 0:
                raise BagPlayerError(f"bag {path} holds no messages")
            topics = {c.topic: c.msgtype for c in reader.connections}
            return PlaylistBag(path, int(reader.start_time), int(reader.end_time) - 1, topics)
    except BagPlayerError:
        raise
    except Exception as exc:  # rosbags raises its own error types for corrupt bags
        raise BagPlayerError(f"cannot read bag {path}: {exc}") from exc
