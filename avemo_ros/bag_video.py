"""What an evaluated bag looked like: its camera annotated with the estimates, as an mp4,
and stills of the worst windows (no ROS imports; needs ``rosbags``).

After :func:`avemo_ros.offline.evaluate_bags` (each bag's ``BagStats.results``),
:func:`render_bag` reads the bag's camera topic once more and draws, with
:func:`avemo_ros.annotate.annotate`, on every frame the newest estimate whose window had
ended by the frame's stamp (the video) and, for each window asked for, on the frame nearest
the window's end (a still). :func:`worst_windows` picks the windows a tester should look at
first: the lowest probability on the true class.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional, Sequence

import cv2
import numpy as np

from .annotate import annotate
from .annotated_video import AnnotatedVideoWriter, EstimateTimeline
from .bags import find_stream_topics, open_bag, read_ground_truth, truth_for_window
from .conversions import ConversionError
from .evaluation import WindowRecord
from .stream_events import camera_frame
from .window import NS

_LOG = logging.getLogger(__name__)

__all__ = ["render_bag", "true_class_probability", "worst_windows"]


def true_class_probability(record: WindowRecord, labels: Sequence[str]) -> Optional[float]:
    """The estimate's probability of the window's true label (None: unscored window)."""
    if not record.truth or record.label is None or record.truth not in labels:
        return None
    i = list(labels).index(record.truth)
    return float(record.probabilities[i]) if i < len(record.probabilities) else None


def worst_windows(records: Sequence[WindowRecord], labels: Sequence[str],
                  n: int = 5) -> list[WindowRecord]:
    """The ``n`` scored windows with the lowest probability on their true class (worst
    first; ties: earlier first)."""
    scored = [(p, i, r) for i, r in enumerate(records)
              if (p := true_class_probability(r, labels)) is not None]
    scored.sort(key=lambda t: (t[0], t[1]))
    return [r for _, _, r in scored[:max(n, 0)]]


def _fps_from_log_times(bag: Any, topic: str, n: int = 31) -> float:
    """The camera's rate from the log times of its first ``n`` messages (30 if unknown)."""
    times = []
    for msg in bag.messages([topic], deserialize=False):
        times.append(msg.log_time_ns)
        if len(times) >= n:
            break
    if len(times) < 2:
        return 30.0
    step = float(np.median(np.diff(times))) / NS
    return float(min(max(1.0 / step, 1.0), 120.0)) if step > 0 else 30.0


def _rgb(event: Any) -> np.ndarray:
    img = event.decode(event.payload)
    return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB) if img.ndim == 2 else img


def render_bag(bag_path: Path | str, results: Sequence[Any], *, video: Optional[Path] = None,
               stills: Optional[dict[int, Path]] = None, camera_topic: Optional[str] = None,
               min_width: int = 640, labels: Sequence[str] = ()) -> dict[str, Any]:
    """Annotated mp4 (``video``) and stills (``stills``: window end ns -> PNG path) of one
    bag from its estimates (``results``: EmotionResults of that bag). Frames that cannot be
    decoded are skipped (counted). Returns what was written:
    ``{"frames": n, "bad_frames": n, "video": path or None, "stills": [paths]}``."""
    stills = dict(stills or {})
    by_end = {int(r.end_ns): r for r in results}
    timeline = EstimateTimeline((int(r.end_ns), r, float(r.inference_time)) for r in results)
    pending = sorted(stills)
    written: list[str] = []
    out = {"frames": 0, "bad_frames": 0, "video": None, "stills": written}
    with open_bag(bag_path) as bag:
        cam, _ = find_stream_topics(bag, camera_topic, None)
        if cam is None:
            _LOG.warning("%s: no camera topic: no video, no stills", bag_path)
            return out
        segments = read_ground_truth(bag)
        writer = (AnnotatedVideoWriter(video, _fps_from_log_times(bag, cam))
                  if video is not None else None)
        prev = None  # the last frame event, decoded only if a still needs it
        first_ns: Optional[int] = None
        try:
            for m in bag.messages([cam]):
                try:
                    event = camera_frame(m.msg, received_ns=m.log_time_ns)
                    rgb = _rgb(event) if writer is not None else None
                except ConversionError as exc:
                    out["bad_frames"] += 1
                    _LOG.debug("%s: frame skipped: %s", bag_path, exc)
                    continue
                first_ns = event.stamp_ns if first_ns is None else first_ns
                while pending and event.stamp_ns >= pending[0]:
                    end = pending.pop(0)
                    near = (event if prev is None
                            or event.stamp_ns - end <= end - prev.stamp_ns else prev)
                    _still(near, by_end.get(end), stills[end], segments, labels)
                    written.append(str(stills[end]))
                prev = event
                if writer is not None:
                    result, latency = timeline.at(event.stamp_ns)
                    notes = _truth_note(result, segments)
                    writer.write(annotate(rgb, result, latency_s=latency, notes=notes,
                                          min_width=min_width, labels=labels),
                                 (event.stamp_ns - first_ns) / NS)
                    out["frames"] += 1
            for end in pending:  # windows ending after the last frame: the last frame
                if prev is not None:
                    _still(prev, by_end.get(end), stills[end], segments, labels)
                    written.append(str(stills[end]))
        finally:
            if writer is not None:
                writer.close()
    if writer is not None:
        out["video"] = str(video)
    return out


def _truth_note(result: Any, segments: Sequence[Any]) -> list[str]:
    """'truth X (right|wrong)' for the result's window, when the bag has ground truth."""
    if result is None or not segments:
        return []
    truth = truth_for_window(segments, int(result.start_ns), int(result.end_ns))
    if truth is None:
        return ["truth: none"]
    return [f"truth {truth} ({'right' if truth == result.label else 'wrong'})"]


def _still(event: Any, result: Any, path: Path, segments: Sequence[Any],
           labels: Sequence[str]) -> None:
    """One annotated frame as a PNG."""
    img = annotate(_rgb(event), result,
                   latency_s=None if result is None else float(result.inference_time),
                   notes=_truth_note(result, segments), min_width=640, labels=labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")
