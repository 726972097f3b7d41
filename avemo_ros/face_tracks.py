"""What a face tracker answers (:class:`~avemo_ros.face_tracking.FaceTracker`): its
configuration, the tracked faces of a frame, why a frame has none, its counters, and a
window's frames summarised per face."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from .face_frames import Box

if TYPE_CHECKING:
    from .face_detectors import Detection

NS = 1_000_000_000

class NoFace(str, enum.Enum):
    """Why a frame has no detected face."""

    #: the last full-frame detection found no face of ``min_face_px`` or more
    NONE_FOUND = "none_found"
    #: a face was seen, but smaller than ``min_face_px`` (the probe, or a track that shrank)
    TOO_SMALL = "too_small"
    #: faces are tracked but none was found this frame (they coast), or a track just ended
    LOST = "lost"


@dataclass(frozen=True)
class TrackerConfig:
    """How the tracker searches (see the module doc for each rule).

    ``min_face_px``: smallest face to find, in camera pixels (face height); 0: the rule of
    bundles older than that parameter (``legacy_window_px`` at ``legacy_detect_width``
    pixels wide, so it grows with the image width).
    """

    min_face_px: int = 64
    max_faces: int = 3
    full_every_frames: int = 45
    full_every_s: float = 3.0
    scan_every_frames: int = 5
    change_threshold: float = 12.0
    min_full_interval_s: float = 1.0
    change_cell_px: int = 8
    roi_scale: float = 1.8
    size_ratio: float = 1.2
    roi_window_px: Optional[int] = 24
    roi_scale_step: Optional[float] = 1.1
    roi_min_neighbors: Optional[int] = 2
    max_missed: int = 5
    match_iou: float = 0.3
    match_centre: float = 0.5
    dedupe_iou: float = 0.5
    min_hits: int = 1
    small_floor: float = 0.75
    probe_too_small: bool = True
    id_seed: Optional[int] = None
    legacy_detect_width: int = 320
    legacy_window_px: int = 32

    def __post_init__(self):
        if self.min_face_px < 0 or self.max_faces < 1 or self.full_every_frames < 1 \
                or self.scan_every_frames < 1 or self.max_missed < 0 or self.min_hits < 1 \
                or self.change_cell_px < 1 or self.change_threshold < 0:
            raise ValueError(f"invalid tracker configuration {self}")
        if self.roi_scale < 1.0 or self.size_ratio < 1.0 or not 0 < self.small_floor <= 1:
            raise ValueError(f"invalid tracker search region {self}")

    def min_face_for(self, width: int) -> float:
        """Smallest face to find, in pixels, on an image ``width`` pixels wide."""
        if self.min_face_px > 0:
            return float(self.min_face_px)
        return self.legacy_window_px * max(1.0, width / float(self.legacy_detect_width))


@dataclass(frozen=True)
class TrackedFace:
    """One tracked face in one frame.

    ``box``: (x, y, w, h) in pixels of the image given to ``update`` (the detection, or the
    predicted box while ``detected`` is False); ``age``: kept frames since the track
    began (1 on its first); ``missed``: consecutive frames without a detection (0 when
    ``detected``); ``hits``: frames with one; ``score``: the last detection's confidence.
    """

    id: str
    box: Box
    detected: bool
    age: int
    missed: int
    hits: int
    first_stamp_ns: int
    last_detected_ns: int
    score: float

    @property
    def area(self) -> int:
        return self.box[2] * self.box[3]


@dataclass(frozen=True)
class FrameResult:
    """What :meth:`FaceTracker.update_frame` found in one frame.

    ``faces``: the tracks (confirmed: ``min_hits`` detections), largest box first;
    ``search``: where new faces were looked for ("full", "changes", "tracks": nowhere);
    ``reason``: None when at least one face was detected this frame, else why not;
    ``started`` / ``ended``: ids that began / ended here (ended with the reason);
    ``small_boxes``: faces the too-small probe saw; ``cost_s``: time spent in ``update``.
    """

    stamp_ns: int
    faces: tuple[TrackedFace, ...]
    reason: Optional[NoFace]
    search: str  # "full": whole frame; "changes": changed regions; "tracks": tracks only
    started: tuple[str, ...] = ()
    ended: tuple[tuple[str, NoFace], ...] = ()
    small_boxes: tuple[Box, ...] = ()
    reset: bool = False
    cost_s: float = 0.0

    @property
    def full_detection(self) -> bool:
        """Was the whole frame searched for faces?"""
        return self.search == "full"

    @property
    def detected(self) -> tuple[TrackedFace, ...]:
        """The faces found in this very frame."""
        return tuple(f for f in self.faces if f.detected)

    @property
    def primary(self) -> Optional[TrackedFace]:
        """The largest face (detected or coasting), or None."""
        return self.faces[0] if self.faces else None


@dataclass
class Track:
    """One track's state (the tracker's own; :meth:`view` is what it answers)."""

    id: str
    cx: float
    cy: float
    w: float
    h: float
    first_ns: int
    det_ns: int
    score: float
    vx: float = 0.0  # pixels per second
    vy: float = 0.0
    age: int = 1
    hits: int = 1
    missed: int = 0
    detected: bool = True

    def predict(self, stamp_ns: int) -> tuple[float, float, float, float]:
        dt = min(0.5, max(0.0, (stamp_ns - self.det_ns) / NS))
        return (self.cx + self.vx * dt, self.cy + self.vy * dt, self.w, self.h)

    def hit(self, d: Detection, stamp_ns: int) -> None:
        x, y, w, h = d.box
        cx, cy = x + w / 2.0, y + h / 2.0
        dt = (stamp_ns - self.det_ns) / NS
        if 0 < dt <= 1.0:
            limit = 3.0 * max(w, h)  # a face crosses at most three widths a second
            vx = float(np.clip((cx - self.cx) / dt, -limit, limit))
            vy = float(np.clip((cy - self.cy) / dt, -limit, limit))
            self.vx, self.vy = 0.5 * (self.vx + vx), 0.5 * (self.vy + vy)
        self.cx, self.cy, self.w, self.h = cx, cy, float(w), float(h)
        self.det_ns, self.score = stamp_ns, d.score
        self.hits += 1
        self.missed, self.detected = 0, True

    def miss(self) -> None:
        self.missed += 1
        self.detected = False

    def view(self, stamp_ns: int) -> TrackedFace:
        cx, cy, w, h = (self.cx, self.cy, self.w, self.h) if self.detected \
            else self.predict(stamp_ns)
        return TrackedFace(self.id, box_from_centre(cx, cy, w, h), self.detected, self.age,
                           self.missed, self.hits, self.first_ns, self.det_ns, self.score)


def box_from_centre(cx: float, cy: float, w: float, h: float) -> Box:
    """(x, y, w, h) in whole pixels of a box given by its centre and size."""
    return (int(round(cx - w / 2)), int(round(cy - h / 2)), int(round(w)), int(round(h)))


@dataclass
class TrackerStats:
    """Counts since the tracker was made (not cleared by ``reset``)."""

    frames: int = 0
    full_detections: int = 0
    change_scans: int = 0
    regions_scanned: int = 0
    roi_searches: int = 0
    probes: int = 0
    resets: int = 0
    tracks_started: int = 0
    time_s: float = 0.0
    no_face: dict = field(default_factory=lambda: {r: 0 for r in NoFace})


def boxes_by_face(frames: Sequence[FrameResult], detected_only: bool = True,
                  max_faces: Optional[int] = None) -> dict[str, list[Optional[Box]]]:
    """A window's frames -> per face id, its box in each frame (None where that face was
    not detected, or not tracked), for :func:`~avemo_ros.face_frames.build_face_stack`.

    Faces come largest first (by their median area over the frames they are in), at most
    ``max_faces``; ``detected_only=False`` also takes the predicted boxes of coasting
    frames.
    """
    boxes: dict[str, list[Optional[Box]]] = {}
    for i, r in enumerate(frames):
        for f in r.faces:
            if f.detected or not detected_only:
                boxes.setdefault(f.id, [None] * len(frames))[i] = f.box
    area = {k: float(np.median([b[2] * b[3] for b in v if b is not None]))
            for k, v in boxes.items()}
    order = sorted(boxes, key=lambda k: -area[k])[:max_faces]
    return {k: boxes[k] for k in order}


def window_reason(frames: Sequence[FrameResult]) -> Optional[NoFace]:
    """Why a window's frames show no face, for counting a window left without video: the
    most frequent reason among its frames that had none (ties: too small, then lost,
    then none found); None when every frame had a detected face."""
    counts = {r: 0 for r in (NoFace.TOO_SMALL, NoFace.LOST, NoFace.NONE_FOUND)}
    for r in frames:
        if r.reason is not None:
            counts[r.reason] += 1
    best = max(counts, key=lambda r: counts[r])
    return best if counts[best] else None
