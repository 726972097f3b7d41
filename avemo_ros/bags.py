"""rosbag2 files (MCAP / sqlite3) without ROS: write camera + microphone bags, read them back.

Built on the ``rosbags`` library. Reading works for bags recorded by ``ros2 bag record`` on
a robot (``sensor_msgs/Image`` or ``CompressedImage`` plus either ``audio_common_msgs``
flavour) as well as for bags written here. Message types come from the definitions the
bag embeds where it has them; otherwise from a typestore of standard ROS 2 messages plus
``avemo_ros/EmotionEstimate`` and one ``audio_common_msgs`` flavour (the two flavours
define ``audio_common_msgs/msg/AudioData`` differently, so each gets its own typestore).

Ground truth travels inside the bag twice: as JSON segments in the rosbag2 metadata
(``custom_data`` key :data:`TRUTH_KEY`) and as ``std_msgs/String`` messages on
:data:`TRUTH_TOPIC` (one per segment, stamped at its start), which survive re-recording.
"""
from __future__ import annotations

import heapq
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence

import numpy as np

from .audio_codec import chunk_to_audio_data_bytes
from .conversions import IMAGE_ENCODINGS

_LOG = logging.getLogger(__name__)

__all__ = [
    "AUDIO_TYPES",
    "AudioStreamChunk",
    "BagError",
    "BagInfo",
    "BagMessage",
    "CAMERA_TYPES",
    "EMOTION_TYPE",
    "FLAVOURS",
    "Frame",
    "TRUTH_KEY",
    "TRUTH_TOPIC",
    "TruthSegment",
    "bag_info",
    "bag_typestore",
    "find_stream_topics",
    "open_bag",
    "read_ground_truth",
    "read_messages",
    "timeline_from_clips",
    "truth_for_window",
    "typestore_for",
    "write_bag",
]

NS = 1_000_000_000
TRUTH_KEY = "avemo_ros.ground_truth"
TRUTH_TOPIC = "/avemo/ground_truth"
FLAVOURS = ("ros_drivers", "mgonzs13")
STORAGES = ("mcap", "sqlite3")
IMAGE_KINDS = ("raw", "compressed")

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

_ROOT = Path(__file__).resolve().parents[1]  # the checkout, when imported from one
# The .msg definitions ship as package data: interfaces/<package>[/<flavour>]/msg/*.msg
# (EmotionEstimate.msg is copied there from the top-level msg/ when a wheel is built).
_INTERFACES = "interfaces"
# the file that tells the audio flavours apart
_FLAVOUR_MARKER = {"mgonzs13": "AudioStamped.msg", "ros_drivers": "AudioDataStamped.msg"}


class BagError(ValueError):
    """A bag cannot be written or read (missing, unsupported, inconsistent)."""


@dataclass(frozen=True)
class TruthSegment:
    """Ground truth: ``label`` holds from ``start_ns`` to ``end_ns`` (header-stamp clock)."""

    source: str
    start_ns: int
    end_ns: int
    label: str


@dataclass(frozen=True)
class Frame:
    """A camera frame to write: ``rgb`` (H, W, 3) uint8 stamped ``stamp_ns``."""

    stamp_ns: int
    rgb: np.ndarray


@dataclass(frozen=True)
class AudioStreamChunk:
    """An audio chunk to write: ``samples`` (n, channels) float32 in [-1, 1], first sample at
    ``stamp_ns``."""

    stamp_ns: int
    samples: np.ndarray
    sample_rate: int


@dataclass(frozen=True)
class BagMessage:
    """One message read from a bag (``msg`` is None when deserialization was not asked for)."""

    topic: str
    msgtype: str
    log_time_ns: int
    msg: Any
    raw: bytes | memoryview


@dataclass
class BagInfo:
    """What a bag holds."""

    path: str
    storage: str  # mcap | sqlite3 | unknown
    topics: dict[str, str]  # topic -> message type
    counts: dict[str, int]  # topic -> message count
    start_ns: int
    end_ns: int
    flavour: str  # audio_common_msgs flavour used for types the bag does not define
    camera_topic: Optional[str]
    audio_topic: Optional[str]
    truth: list[TruthSegment] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        """Seconds between the first and the last message."""
        return max(0, self.end_ns - self.start_ns) / NS


# ----------------------------------------------------------------------------- typestores


def _shipped_msg_dir(*parts: str) -> Optional[Any]:
    """``interfaces/<parts>/msg`` of this package's data (importlib.resources), or None."""
    from importlib.resources import files

    folder = files(__package__).joinpath(_INTERFACES)
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


# ----------------------------------------------------------------------------- reading


def _open_reader(path: Path | str):
    from rosbags.rosbag2 import Reader

    p = Path(path)
    if not p.exists():
        raise BagError(f"bag not found: {p}")
    try:
        reader = Reader(p)
        reader.open()
    except Exception as exc:  # noqa: BLE001 - rosbags raises several error types
        raise BagError(f"cannot open bag {p}: {exc}") from exc
    return reader


class open_bag:  # noqa: N801 - used like a function: ``with open_bag(path) as bag``
    """An open bag: ``connections``, ``typestore``, ``flavour``, ``custom_data`` and
    :meth:`messages`."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._reader = _open_reader(self.path)
        try:
            self.connections = list(self._reader.connections)
            self.typestore, self.flavour = bag_typestore(self.connections)
        except BaseException:
            self._reader.close()
            raise
        meta = getattr(self._reader.storage, "metadata", None)
        self.custom_data: dict[str, str] = dict(getattr(meta, "custom", None) or {})

    def __enter__(self) -> "open_bag":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying reader."""
        if self._reader.is_open:
            self._reader.close()

    @property
    def topics(self) -> dict[str, str]:
        """Topic -> message type."""
        return {c.topic: c.msgtype for c in self.connections}

    @property
    def counts(self) -> dict[str, int]:
        """Topic -> number of messages."""
        out: dict[str, int] = {}
        for c in self.connections:
            out[c.topic] = out.get(c.topic, 0) + int(c.msgcount)
        return out

    @property
    def storage(self) -> str:
        """Storage plugin of the bag files (mcap / sqlite3)."""
        files = (list(self.path.glob("*.mcap")) + list(self.path.glob("*.db3"))
                 if self.path.is_dir() else [self.path])
        suffixes = {f.suffix for f in files}
        return ({".mcap": "mcap", ".db3": "sqlite3"}.get(suffixes.pop(), "unknown")
                if len(suffixes) == 1 else "unknown")

    @property
    def start_ns(self) -> int:
        """Log time of the first message."""
        return int(self._reader.start_time) if self._reader.message_count else 0

    @property
    def end_ns(self) -> int:
        """Log time of the last message."""
        return int(self._reader.end_time) - 1 if self._reader.message_count else 0

    def deserialize(self, raw: bytes | memoryview, msgtype: str) -> Any:
        """One CDR message -> a rosbags message object (BagError naming the type on failure)."""
        try:
            return self.typestore.deserialize_cdr(raw, msgtype)
        except Exception as exc:  # noqa: BLE001 - rosbags raises several error types
            raise BagError(f"{self.path}: cannot deserialize a {msgtype} message: {exc}") from exc

    def messages(self, topics: Optional[Iterable[str]] = None, *, deserialize: bool = True
                 ) -> Iterator[BagMessage]:
        """Messages of ``topics`` (all when None) in log-time order.

        ``deserialize=False`` leaves ``msg`` None and hands out the raw CDR bytes only.
        """
        wanted = None if topics is None else set(topics)
        if wanted is not None:
            missing = wanted - set(self.topics)
            if missing:
                raise BagError(
                    f"{self.path}: no topic {sorted(missing)} (topics: {sorted(self.topics)})")
        conns = [c for c in self.connections if wanted is None or c.topic in wanted]
        if not conns:
            return
        last = None
        for conn, stamp, raw in self._reader.messages(connections=conns):
            if last is not None and stamp < last:
                _LOG.debug("%s: log time goes back on %s (split bag files?)", self.path,
                           conn.topic)
            last = stamp
            msg = self.deserialize(raw, conn.msgtype) if deserialize else None
            yield BagMessage(conn.topic, conn.msgtype, int(stamp), msg, raw)


def read_messages(path: Path | str, topics: Optional[Iterable[str]] = None, *,
                  deserialize: bool = True) -> Iterator[BagMessage]:
    """Messages of a bag in log-time order as :class:`BagMessage` (topic, msgtype, log time,
    msg)."""
    with open_bag(path) as bag:
        yield from bag.messages(topics, deserialize=deserialize)


def _pick(topics: dict[str, str], counts: dict[str, int], types: Sequence[str], what: str
          ) -> Optional[str]:
    cands = [t for t, ty in topics.items() if ty in types]
    if not cands:
        return None
    # prefer the first listed type (raw images, AudioStamped), then the busiest topic
    cands.sort(key=lambda t: (types.index(topics[t]), -counts.get(t, 0), t))
    if len(cands) > 1:
        _LOG.warning("several %s topics %s: using %s (name one to choose)", what, cands, cands[0])
    return cands[0]


def find_stream_topics(bag: "open_bag", camera_topic: Optional[str] = None,
                       audio_topic: Optional[str] = None) -> tuple[Optional[str], Optional[str]]:
    """(camera topic, microphone topic) of an open bag, by message type where not given.

    A given topic must exist with a supported type (BagError otherwise).
    """
    topics, counts = dict(bag.topics), bag.counts
    for given, types, what in ((camera_topic, CAMERA_TYPES, "camera"),
                               (audio_topic, AUDIO_TYPES, "audio")):
        if given is not None:
            if given not in topics:
                raise BagError(f"{bag.path}: no {what} topic {given!r} (topics: {sorted(topics)})")
            if topics[given] not in types:
                raise BagError(f"{bag.path}: {what} topic {given!r} has type {topics[given]}, "
                               f"expected one of {', '.join(types)}")
    if camera_topic is None:  # depth / IR cameras are Images too: keep colour and grey encodings
        for topic, msgtype in list(topics.items()):
            if msgtype == IMAGE_TYPE:
                encoding = _first_encoding(bag, topic)
                if encoding is not None and encoding not in IMAGE_ENCODINGS:
                    _LOG.info("%s: %s skipped as camera (encoding %s)", bag.path, topic, encoding)
                    del topics[topic]
    cam = camera_topic or _pick(topics, counts, CAMERA_TYPES, "camera")
    mic = audio_topic or _pick(topics, counts, AUDIO_TYPES, "audio")
    return cam, mic


def _first_encoding(bag: "open_bag", topic: str) -> Optional[str]:
    """Encoding of the first readable Image on ``topic`` (None when there is none)."""
    for m in bag.messages([topic], deserialize=False):
        try:
            return str(bag.deserialize(m.raw, m.msgtype).encoding).strip().lower()
        except BagError:
            return None
    return None


def _segments_from_json(text: str, where: str) -> list[TruthSegment]:
    try:
        items = json.loads(text)
        if isinstance(items, dict):
            items = [items]
        segs = [TruthSegment(str(d.get("source", "")), int(d["start_ns"]), int(d["end_ns"]),
                             str(d["label"]))
                for d in items]
    except (ValueError, TypeError, KeyError) as exc:
        raise BagError(f"{where}: ground truth is not JSON segments "
                       f"{{source, start_ns, end_ns, label}}: {exc}") from exc
    return segs


def _read_truth(bag: "open_bag") -> list[TruthSegment]:
    if TRUTH_KEY in bag.custom_data:
        segs = _segments_from_json(bag.custom_data[TRUTH_KEY], f"{bag.path} metadata {TRUTH_KEY}")
    elif bag.topics.get(TRUTH_TOPIC) == STRING_TYPE:
        segs = []
        for m in bag.messages([TRUTH_TOPIC]):
            segs += _segments_from_json(m.msg.data, f"{bag.path} topic {TRUTH_TOPIC}")
    else:
        return []
    return sorted(set(segs), key=lambda s: (s.start_ns, s.end_ns, s.label))


def read_ground_truth(bag: "Path | str | open_bag") -> list[TruthSegment]:
    """Ground-truth segments stored in a bag (metadata first, else the truth topic); [] if none.

    ``bag``: a path, or a bag already open.
    """
    if isinstance(bag, open_bag):
        return _read_truth(bag)
    with open_bag(bag) as opened:
        return _read_truth(opened)


def truth_for_window(segments: Sequence[TruthSegment], start_ns: int, end_ns: int,
                     min_share: float = 0.5) -> Optional[str]:
    """The label covering most of [start, end], if it covers more than ``min_share`` of it;
    else None."""
    length = end_ns - start_ns
    if length <= 0:
        return None
    cover: dict[str, int] = {}
    for s in segments:
        overlap = min(end_ns, s.end_ns) - max(start_ns, s.start_ns)
        if overlap > 0:
            cover[s.label] = cover.get(s.label, 0) + overlap
    if not cover:
        return None
    label, ns = max(cover.items(), key=lambda kv: (kv[1], kv[0]))
    return label if ns > min_share * length else None


def bag_info(path: Path | str, camera_topic: Optional[str] = None,
             audio_topic: Optional[str] = None) -> BagInfo:
    """Topics, counts, time span, audio flavour, camera/microphone topics and ground truth of
    a bag."""
    with open_bag(path) as bag:
        cam, mic = find_stream_topics(bag, camera_topic, audio_topic)
        return BagInfo(path=str(path), storage=bag.storage, topics=bag.topics, counts=bag.counts,
                       start_ns=bag.start_ns, end_ns=bag.end_ns, flavour=bag.flavour,
                       camera_topic=cam, audio_topic=mic, truth=_read_truth(bag))


# ----------------------------------------------------------------------------- writing


def _stamp(store, ns: int):
    sec, nanosec = divmod(int(ns), NS)
    if not -(2**31) <= sec < 2**31:
        raise BagError(f"stamp {ns} ns does not fit builtin_interfaces/Time (int32 seconds)")
    return store.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)


def _header(store, ns: int, frame_id: str):
    return store.types["std_msgs/msg/Header"](stamp=_stamp(store, ns), frame_id=frame_id)


def _image_msg(store, frame: Frame, frame_id: str, kind: str, jpeg_quality: int):
    rgb = np.asarray(frame.rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or not rgb.size:
        raise BagError(f"frame at {frame.stamp_ns} ns: expected (H, W, 3) uint8 RGB, "
                       f"got {rgb.dtype} {rgb.shape}")
    header = _header(store, frame.stamp_ns, frame_id)
    if kind == "raw":
        return store.types[IMAGE_TYPE](
            header=header, height=int(rgb.shape[0]), width=int(rgb.shape[1]), encoding="rgb8",
            is_bigendian=0, step=int(rgb.shape[1] * 3), data=np.ascontiguousarray(rgb).reshape(-1))
    import cv2

    ok, enc = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    if not ok:
        raise BagError(f"frame at {frame.stamp_ns} ns: JPEG encoding failed")
    return store.types[COMPRESSED_TYPE](header=header, format="rgb8; jpeg compressed bgr8",
                                        data=enc.reshape(-1).astype(np.uint8))


def _pcm16(samples: np.ndarray) -> np.ndarray:
    """Float samples -> interleaved int16 (the same quantisation as the file_source node)."""
    return np.frombuffer(chunk_to_audio_data_bytes(samples, "S16LE"), dtype="<i2")


def _audio_msg(store, chunk: AudioStreamChunk, frame_id: str, flavour: str, headerless: bool):
    samples = np.asarray(chunk.samples, dtype=np.float32)
    if samples.ndim == 1:
        samples = samples[:, None]
    pcm = _pcm16(samples)
    if flavour == "mgonzs13":
        t = store.types
        empty = {k: np.zeros(0, dt) for k, dt in (("float32_data", np.float32),
                                                  ("int32_data", np.int32),
                                                  ("int8_data", np.int8),
                                                  ("uint8_data", np.uint8))}
        data = t[AUDIO_DATA](int16_data=pcm.astype(np.int16), **empty)
        info = t[AUDIO_INFO](format=8, channels=int(samples.shape[1]), rate=int(chunk.sample_rate),
                             chunk=int(samples.shape[0]))
        return AUDIO_STAMPED, t[AUDIO_STAMPED](
            header=_header(store, chunk.stamp_ns, frame_id),
            audio=t["audio_common_msgs/msg/Audio"](audio_data=data, info=info))
    data = store.types[AUDIO_DATA](data=pcm.view(np.uint8).copy())
    if headerless:
        return AUDIO_DATA, data
    return AUDIO_DATA_STAMPED, store.types[AUDIO_DATA_STAMPED](
        header=_header(store, chunk.stamp_ns, frame_id), audio=data)


def write_bag(path: Path | str, frames: Iterable[Frame], audio: Iterable[AudioStreamChunk], *,
              truth: Sequence[TruthSegment] = (), storage: str = "mcap", image_kind: str = "raw",
              audio_flavour: str = "ros_drivers", camera_topic: str = "/camera/image_raw",
              audio_topic: str = "/audio", audio_info_topic: str = "/audio_info",
              camera_frame_id: str = "camera", microphone_frame_id: str = "microphone",
              jpeg_quality: int = 90, headerless_audio: bool = False,
              write_truth: bool = True) -> dict[str, Any]:
    """Write a rosbag2 bag with a camera topic and a microphone topic; log time = header stamp.

    ``frames`` and ``audio`` must each be in stamp order (they are merged by stamp).
    ``image_kind``: raw (rgb8 Image) or compressed (JPEG CompressedImage; the camera topic
    gets ``/compressed`` appended). ``audio_flavour``: ros_drivers (the released
    audio_common_msgs: AudioDataStamped S16LE plus one AudioInfo on ``audio_info_topic``;
    ``headerless_audio`` writes bare AudioData instead) or mgonzs13 (AudioStamped, int16).
    ``truth`` goes to the metadata and the truth topic when ``write_truth``. Returns counts
    and the time span.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer

    if storage not in STORAGES:
        raise BagError(f"unknown storage {storage!r} (one of {', '.join(STORAGES)})")
    if image_kind not in IMAGE_KINDS:
        raise BagError(f"unknown image kind {image_kind!r} (one of {', '.join(IMAGE_KINDS)})")
    if audio_flavour not in FLAVOURS:
        raise BagError(f"unknown audio flavour {audio_flavour!r} (one of {', '.join(FLAVOURS)})")
    if headerless_audio and audio_flavour != "ros_drivers":
        raise BagError("headerless audio (bare AudioData) exists in the ros_drivers flavour only")
    out = Path(path)
    if out.exists():
        raise BagError(f"{out} exists already: rosbag2 bags are never overwritten")
    store = typestore_for(audio_flavour)
    image_topic = camera_topic if image_kind == "raw" else camera_topic.rstrip("/") + "/compressed"
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    counts = {"frames": 0, "audio_chunks": 0, "truth": 0}
    first = last = None
    audio_layout: Optional[tuple[int, int]] = None
    # merge the two stamp-ordered streams; frames first on equal stamps
    events = heapq.merge(((f.stamp_ns, 0, i, f) for i, f in enumerate(frames)),
                         ((a.stamp_ns, 1, i, a) for i, a in enumerate(audio)))
    writer = Writer(out, version=9, storage_plugin=plugin)
    if write_truth and truth:
        writer.set_custom_data(TRUTH_KEY, json.dumps([asdict(s) for s in truth]))
    writer.open()
    try:
        img_conn = writer.add_connection(image_topic,
                                         IMAGE_TYPE if image_kind == "raw" else COMPRESSED_TYPE,
                                         typestore=store)
        audio_conn = info_conn = truth_conn = None
        truth_queue = sorted(truth, key=lambda s: s.start_ns) if write_truth else []
        if truth_queue:
            truth_conn = writer.add_connection(TRUTH_TOPIC, STRING_TYPE, typestore=store)
        for stamp, kind, _, item in events:
            while truth_queue and truth_queue[0].start_ns <= stamp:
                seg = truth_queue.pop(0)
                msg = store.types[STRING_TYPE](data=json.dumps(asdict(seg)))
                writer.write(truth_conn, max(seg.start_ns, 0),
                             store.serialize_cdr(msg, STRING_TYPE))
                counts["truth"] += 1
            if kind == 0:
                msg = _image_msg(store, item, camera_frame_id, image_kind, jpeg_quality)
                writer.write(img_conn, stamp, store.serialize_cdr(msg, img_conn.msgtype))
                counts["frames"] += 1
            else:
                layout = (int(item.sample_rate),
                          int(np.asarray(item.samples).reshape(len(item.samples), -1).shape[1]))
                if audio_flavour == "ros_drivers":
                    if audio_layout is None:
                        info_conn = writer.add_connection(audio_info_topic, AUDIO_INFO,
                                                          typestore=store)
                        info = store.types[AUDIO_INFO](channels=layout[1], sample_rate=layout[0],
                                                       sample_format="S16LE",
                                                       bitrate=16 * layout[0] * layout[1],
                                                       coding_format="WAVE")
                        writer.write(info_conn, stamp, store.serialize_cdr(info, AUDIO_INFO))
                    elif layout != audio_layout:
                        raise BagError(f"audio chunk at {stamp} ns: {layout[1]} ch {layout[0]} Hz "
                                       f"differs from {audio_layout[1]} ch {audio_layout[0]} Hz "
                                       "(the legacy flavour has one format)")
                audio_layout = layout
                msgtype, msg = _audio_msg(store, item, microphone_frame_id, audio_flavour,
                                          headerless_audio)
                if audio_conn is None:
                    audio_conn = writer.add_connection(audio_topic, msgtype, typestore=store)
                writer.write(audio_conn, stamp, store.serialize_cdr(msg, msgtype))
                counts["audio_chunks"] += 1
            first = stamp if first is None else first
            last = stamp
        for seg in truth_queue:  # segments after the last message
            msg = store.types[STRING_TYPE](data=json.dumps(asdict(seg)))
            writer.write(truth_conn, max(seg.start_ns, 0), store.serialize_cdr(msg, STRING_TYPE))
            counts["truth"] += 1
    except BaseException:
        writer.close()
        raise
    writer.close()
    return {"path": str(out), "storage": storage, "image_topic": image_topic,
            "audio_topic": audio_topic, **counts, "start_ns": first, "end_ns": last}


# ----------------------------------------------------------------------------- timelines


@dataclass
class Timeline:
    """Clips laid end to end: frames, audio chunks and ground truth on one clock."""

    frames: list[Frame]
    audio: list[AudioStreamChunk]
    truth: list[TruthSegment]
    start_ns: int
    end_ns: int


def timeline_from_clips(clips: Sequence[Any], labels: Sequence[Optional[str]], *,
                        sources: Optional[Sequence[str]] = None, fps: Optional[float] = None,
                        chunk_s: float = 0.02, gap_s: float = 0.5,
                        start_ns: int = 1_700_000_000 * NS,
                        audio_rate: Optional[int] = None) -> Timeline:
    """Lay decoded clips (``avemo_ros.media.MediaClip``-like) end to end, ``gap_s`` apart.

    Frames keep their clip times (or are re-timed to ``fps``: the latest frame at each
    tick), audio is cut into ``chunk_s`` chunks (resampled to ``audio_rate``, default the
    first clip's rate, so one bag has one audio format), and each clip with a label
    becomes a truth segment spanning the clip.
    """
    from .audio_features import resample

    if len(labels) != len(clips):
        raise BagError(f"{len(clips)} clips but {len(labels)} labels")
    if not (chunk_s > 0 and gap_s >= 0) or (fps is not None and not fps > 0):
        raise BagError(f"need chunk_s > 0, gap_s >= 0, fps > 0; got {chunk_s}, {gap_s}, {fps}")
    sources = list(sources) if sources is not None else [
        Path(getattr(c, "path", "") or f"clip{i}").name for i, c in enumerate(clips)]
    rates = [int(c.sample_rate) for c in clips if len(c.audio) and int(c.sample_rate) > 0]
    rate_out = int(audio_rate or (rates[0] if rates else 0))
    frames: list[Frame] = []
    chunks: list[AudioStreamChunk] = []
    truth: list[TruthSegment] = []
    t = int(start_ns)
    for clip, label, source in zip(clips, labels, sources):
        duration_ns = int(round(float(clip.duration) * NS))
        if duration_ns <= 0:
            raise BagError(f"{source}: empty clip (no frames, no audio)")
        times = np.asarray(clip.frame_times, dtype=np.float64)
        if len(times):
            if fps is None:
                for i, ft in enumerate(times):
                    frames.append(Frame(t + int(round(ft * NS)), clip.frames[i]))
            else:
                ticks = np.arange(0.0, float(clip.duration) - 1e-9, 1.0 / fps)
                idx = np.clip(np.searchsorted(times, ticks + 1e-6, side="right") - 1, 0,
                              len(times) - 1)
                for tick, i in zip(ticks, idx):
                    frames.append(Frame(t + int(round(tick * NS)), clip.frames[i]))
        if len(clip.audio) and int(clip.sample_rate) > 0:
            audio = resample(np.asarray(clip.audio, dtype=np.float32), int(clip.sample_rate),
                             rate_out)
            step = max(1, int(round(chunk_s * rate_out)))
            for a in range(0, audio.shape[0], step):
                stamp = t + (a * NS + rate_out // 2) // rate_out
                chunks.append(AudioStreamChunk(stamp, audio[a:a + step], rate_out))
        if label:
            truth.append(TruthSegment(source, t, t + duration_ns, str(label)))
        end = t + duration_ns
        t = end + int(round(gap_s * NS))
    return Timeline(frames=frames, audio=chunks, truth=truth, start_ns=int(start_ns), end_ns=end)
