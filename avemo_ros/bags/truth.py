"""Ground truth of bags: labelled time segments, stored twice inside a bag.

As JSON segments in the rosbag2 metadata (``custom_data`` key :data:`TRUTH_KEY`) and as
``std_msgs/String`` messages on :data:`TRUTH_TOPIC` (one per segment, stamped at its
start), which survive re-recording.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Optional, Sequence

from .msg_types import STRING_TYPE, BagError

__all__ = ["TRUTH_KEY", "TRUTH_TOPIC", "TruthSegment", "truth_for_window"]

TRUTH_KEY = "avemo_ros.ground_truth"
TRUTH_TOPIC = "/avemo/ground_truth"


@dataclass(frozen=True)
class TruthSegment:
    """Ground truth: ``label`` holds from ``start_ns`` to ``end_ns`` (header-stamp clock)."""

    source: str
    start_ns: int
    end_ns: int
    label: str



def segments_to_json(segments: Sequence[TruthSegment]) -> str:
    """JSON list of segments, as the metadata stores them."""
    return json.dumps([asdict(s) for s in segments])


def segment_to_json(segment: TruthSegment) -> str:
    """JSON of one segment, as a truth-topic message holds it."""
    return json.dumps(asdict(segment))


def segments_from_json(text: str, where: str) -> list[TruthSegment]:
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



def truth_of(bag: Any) -> list[TruthSegment]:
    """Ground truth of an open bag (metadata first, else the truth topic); [] if none."""
    if TRUTH_KEY in bag.custom_data:
        segs = segments_from_json(bag.custom_data[TRUTH_KEY], f"{bag.path} metadata {TRUTH_KEY}")
    elif bag.topics.get(TRUTH_TOPIC) == STRING_TYPE:
        segs = []
        for m in bag.messages([TRUTH_TOPIC]):
            segs += segments_from_json(m.msg.data, f"{bag.path} topic {TRUTH_TOPIC}")
    else:
        return []
    return sorted(set(segs), key=lambda s: (s.start_ns, s.end_ns, s.label))


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

