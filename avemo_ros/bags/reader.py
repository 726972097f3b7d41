"""Reading rosbag2 bags (MCAP / sqlite3) without ROS: messages, stream topics, what a bag holds.

Works for bags recorded by ``ros2 bag record`` on a robot (``sensor_msgs/Image`` or
``CompressedImage`` plus either ``audio_common_msgs`` flavour) as well as for bags written
by :mod:`avemo_ros.bags.writer`; message types as :mod:`avemo_ros.bags.msg_types` resolves them.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence

from ..conversions import IMAGE_ENCODINGS
from .msg_types import AUDIO_TYPES, CAMERA_TYPES, IMAGE_TYPE, NS, BagError, bag_typestore
from .truth import TruthSegment, truth_of

_LOG = logging.getLogger(__name__)

__all__ = ["BagInfo", "BagMessage", "bag_info", "find_stream_topics", "open_bag",
           "read_ground_truth", "read_messages"]


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



def read_ground_truth(bag: "Path | str | open_bag") -> list[TruthSegment]:
    """Ground-truth segments stored in a bag (metadata first, else the truth topic); [] if none.

    ``bag``: a path, or a bag already open.
    """
    if isinstance(bag, open_bag):
        return truth_of(bag)
    with open_bag(bag) as opened:
        return truth_of(opened)


def bag_info(path: Path | str, camera_topic: Optional[str] = None,
             audio_topic: Optional[str] = None) -> BagInfo:
    """Topics, counts, time span, audio flavour, camera/microphone topics and ground truth of
    a bag."""
    with open_bag(path) as bag:
        cam, mic = find_stream_topics(bag, camera_topic, audio_topic)
        return BagInfo(path=str(path), storage=bag.storage, topics=bag.topics, counts=bag.counts,
                       start_ns=bag.start_ns, end_ns=bag.end_ns, flavour=bag.flavour,
                       camera_topic=cam, audio_topic=mic, truth=truth_of(bag))

