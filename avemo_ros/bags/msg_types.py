"""Message types of bags: type names, audio flavours and rosbags typestores (no ROS needed).

Types come from the definitions a bag embeds where it has them; otherwise from a typestore of
standard ROS 2 messages plus ``avemo_ros/EmotionEstimate`` and one ``audio_common_msgs``
flavour (the two flavours define ``audio_common_msgs/msg/AudioData`` differently, so each
gets its own typestore). The .msg files ship as package data under ``avemo_ros/interfaces/``.
"""
from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional, Sequence

_LOG = logging.getLogger(__name__)

__all__ = [
    "AUDIO_DATA", "AUDIO_DATA_STAMPED", "AUDIO_INFO", "AUDIO_STAMPED", "AUDIO_TYPES",
    "BagError", "CAMERA_TYPES", "COMPRESSED_TYPE", "EMOTION_TYPE", "FLAVOURS", "IMAGE_TYPE",
    "NS", "STRING_TYPE", "bag_typestore", "typestore_for",
]

NS = 1_000_000_000
FLAVOURS = ("ros_drivers", "mgonzs13")

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
CAMERA_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)
AUDIO_STAMPED = "audio_common_msgs/msg/AudioStamped"
AUDIO_DATA_STAMPED = "audio_common_msgs/msg/AudioDataStamped"
AUDIO_DATA = "audio_common_msgs/msg/AudioData"
AUDIO_INFO = "audio_common_msgs/msg/AudioInfo"
AUDIO_TYPES = (AUDIO_STAMPED, AUDIO_DATA_STAMPED, AUDIO_DATA)
EMOTION_TYPE = "avemo_ros/msg/EmotionEstimate"
STRING_TYPE = "std_msgs/msg/String"

_ROOT = Path(__file__).resolve().parents[2]  # the checkout, when imported from one
# The .msg definitions ship as package data: interfaces/<package>[/<flavour>]/msg/*.msg
# (EmotionEstimate.msg is copied there from the top-level msg/ when a wheel is built).
_INTERFACES = "interfaces"
# the file that tells the audio flavours apart
_FLAVOUR_MARKER = {"mgonzs13": "AudioStamped.msg", "ros_drivers": "AudioDataStamped.msg"}


class BagError(ValueError):
    """A bag cannot be written or read (missing, unsupported, inconsistent)."""



def _shipped_msg_dir(*parts: str) -> Optional[Any]:
    """``interfaces/<parts>/msg`` of this package's data (importlib.resources), or None."""
    from importlib.resources import files

    folder = files("avemo_ros").joinpath(_INTERFACES)
    for part in (*parts, "msg"):
        folder = folder.joinpath(part)
    return folder if folder.is_dir() else None


def _ament_msg_dirs(package: str) -> list[Path]:
    """``share/<package>/msg`` of every prefix on AMENT_PREFIX_PATH (a ROS install)."""
    prefixes = filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep))
    return [d for d in (Path(p) / "share" / package / "msg" for p in prefixes) if d.is_dir()]


def _emotion_msg_dir() -> Any:
    """The folder holding EmotionEstimate.msg: package data, the checkout's msg/, a ROS prefix."""
    candidates = [_shipped_msg_dir("avemo_ros"), _ROOT / "msg", *_ament_msg_dirs("avemo_ros")]
    for d in candidates:
        if d is not None and d.joinpath("EmotionEstimate.msg").is_file():
            return d
    raise BagError(
        "EmotionEstimate.msg not found (looked in the package data "
        f"avemo_ros/interfaces/avemo_ros/msg, in {_ROOT / 'msg'} and in share/avemo_ros/msg "
        "on AMENT_PREFIX_PATH): reinstall avemo_ros")


def _flavour_msg_dir(flavour: str) -> Any:
    """The folder of the ``flavour`` audio_common_msgs .msg files: package data, else ROS."""
    marker = _FLAVOUR_MARKER[flavour]
    candidates = [_shipped_msg_dir("audio_common_msgs", flavour),
                  *_ament_msg_dirs("audio_common_msgs")]
    for d in candidates:
        if d is not None and d.joinpath(marker).is_file():
            return d
    raise BagError(
        f"no .msg files of the {flavour} audio_common_msgs flavour found (looked for {marker} "
        f"in the package data avemo_ros/interfaces/audio_common_msgs/{flavour}/msg and in "
        "share/audio_common_msgs/msg on AMENT_PREFIX_PATH): reinstall avemo_ros")


def _types_from_dir(package: str, folder: Any) -> dict:
    """Types of every .msg file in ``folder`` (a Path or an importlib.resources Traversable)."""
    from rosbags.typesys import get_types_from_msg

    typs: dict = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".msg") and entry.is_file():
            stem = entry.name[:-len(".msg")]
            text = entry.read_text(encoding="utf-8")
            typs.update(get_types_from_msg(text, f"{package}/msg/{stem}"))
    return typs


def _base_store_name():
    from rosbags.typesys import Stores

    for name in ("ROS2_KILTED", "ROS2_JAZZY", "ROS2_HUMBLE"):
        if hasattr(Stores, name):
            return getattr(Stores, name)
    raise BagError("the installed rosbags has no ROS 2 typestore (need rosbags >= 0.10)")


@lru_cache(maxsize=None)
def _flavour_typedefs(flavour: str) -> dict:
    """Field definitions: standard ROS 2 types + EmotionEstimate + one audio flavour."""
    from rosbags.typesys import get_typestore

    if flavour not in FLAVOURS:
        raise BagError(f"unknown audio flavour {flavour!r} (one of {', '.join(FLAVOURS)})")
    typs = dict(get_typestore(_base_store_name()).fielddefs)
    typs.update(_types_from_dir("avemo_ros", _emotion_msg_dir()))
    typs.update(_types_from_dir("audio_common_msgs", _flavour_msg_dir(flavour)))
    return typs


def _new_store(typs: dict):
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.EMPTY)
    store.register({k: v for k, v in typs.items() if k not in store.fielddefs})
    return store


@lru_cache(maxsize=None)
def typestore_for(flavour: str):
    """A rosbags typestore with ROS 2 standard types, EmotionEstimate and ``flavour`` audio types.

    Shared and cached: do not register further types into it.
    """
    return _new_store(_flavour_typedefs(flavour))


def _embedded_types(connections: Sequence[Any]) -> dict:
    """Type definitions embedded in the bag (MCAP schemas, rosbag2 message_definitions)."""
    from rosbags.interfaces import MessageDefinitionFormat
    from rosbags.typesys import get_types_from_idl, get_types_from_msg

    typs: dict = {}
    for conn in connections:
        fmt, text = conn.msgdef.format, conn.msgdef.data
        try:
            if fmt == MessageDefinitionFormat.MSG and text:
                typs.update(get_types_from_msg(text, conn.msgtype))
            elif fmt == MessageDefinitionFormat.IDL and text:
                sep = "=" * 80 + "\n"
                parts = text.split(sep)[1:] if text.startswith(sep + "IDL: ") else [text]
                for part in parts:
                    typs.update(get_types_from_idl(
                        part.split("\n", 1)[1] if part.startswith("IDL: ") else part))
        except Exception as exc:  # noqa: BLE001 - a bad embedded definition: fall back to ours
            _LOG.warning("cannot parse the definition of %s embedded for %s (%s): "
                         "using the built-in one", conn.msgtype, conn.topic, exc)
    return typs


def _detect_flavour(connections: Sequence[Any], embedded: dict) -> str:
    """The audio_common_msgs flavour a bag uses: by type names, definitions, then type hashes."""
    types = {c.msgtype for c in connections}
    if AUDIO_STAMPED in types or "audio_common_msgs/msg/Audio" in types:
        return "mgonzs13"
    if AUDIO_DATA_STAMPED in types:
        return "ros_drivers"
    if AUDIO_DATA in embedded:
        names = [f[0] for f in embedded[AUDIO_DATA][1]]
        return "ros_drivers" if names == ["data"] else "mgonzs13"
    digests = {c.digest for c in connections if c.msgtype == AUDIO_DATA and c.digest}
    for flavour in FLAVOURS:
        try:
            if digests and typestore_for(flavour).hash_rihs01(AUDIO_DATA) in digests:
                return flavour
        except BagError:
            continue
    return "ros_drivers"  # a bare AudioData without definition: the headerless ros_drivers message


def bag_typestore(connections: Sequence[Any]):
    """(typestore, flavour) for a bag's connections; definitions the bag embeds win."""
    embedded = _embedded_types(connections)
    flavour = _detect_flavour(connections, embedded)
    store = typestore_for(flavour)

    def same(a: Any, b: Any) -> bool:
        return [(f[0].lower(), f[1]) for f in a[1]] == [(f[0].lower(), f[1]) for f in b[1]]

    if any(k not in store.fielddefs or not same(store.fielddefs[k], v)
           for k, v in embedded.items()):
        typs = dict(_flavour_typedefs(flavour))
        typs.update(embedded)
        store = _new_store(typs)  # a store of its own where the bag differs from ours
    for conn in connections:
        if conn.msgtype not in store.fielddefs:
            _LOG.warning("bag %s: no definition of %s (topic %s): its messages cannot be read",
                         getattr(conn.owner, "path", ""), conn.msgtype, conn.topic)
        elif (conn.digest and conn.digest.startswith("RIHS01_")
              and store.hash_rihs01(conn.msgtype) != conn.digest):
            _LOG.warning("topic %s: the bag's %s has another type hash than the definition "
                         "used (%s)", conn.topic, conn.msgtype, conn.digest)
    return store, flavour

