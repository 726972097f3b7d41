"""Detect, then track: faces with stable ids over kept camera frames, at a fraction of the
cost of detecting every frame.

:class:`FaceTracker` is fed the kept frames of one camera in stamp order
(:meth:`FaceTracker.update`, grey uint8 images) and answers, per frame, the faces it
tracks (:class:`TrackedFace`: id, box in image pixels, detected this frame or not, age,
missed count) and, where no face was detected, why (:class:`NoFace`).

* **Full-frame detection at a low rate**: on the first frame, then every
  ``full_every_frames`` kept frames or ``full_every_s`` seconds of stamps, whichever comes
  first. It looks for faces from ``min_face_px`` (camera pixels) up, at the scale that
  brings such a face to the detector's window, as
  :class:`~avemo_ros.face_frames.FaceDetector` does.
* **Change scans for newcomers**: every ``scan_every_frames`` kept frames (and on the
  frame after a track ended), the frame is compared with the one of the last search on a
  grid of ``change_cell_px`` cells; only the regions whose mean grey moved by more than
  ``change_threshold`` (away from the tracked people's heads and shoulders, padded by half
  a minimum face) are searched, the whole frame when that is most of it (a moving camera,
  a light switched on). A static camera with nobody new in view costs a small resize.
* **In between**, each track is searched for only in a region ``roi_scale`` times its box
  around where its constant-velocity motion puts it, for faces ``1 / size_ratio`` to
  ``size_ratio`` times its size, at the scale bringing that size to ``roi_window_px``: a
  small image, a few pyramid levels. Tracks unmatched by a full-frame detection get that
  search too.
* **Association**: IoU with the predicted box, else centre distance (within
  ``match_centre`` of the face size, size within 1.5x); greedy, best pair first; a
  detection serves one track; tracks that come to overlap (IoU > ``dedupe_iou``) are merged
  into the older one.
* **Ids**: REP-155 style strings, five random lowercase letters as ros4hri's face detector
  makes them, unique for the tracker's life (``id_seed`` makes them reproducible). A track
  lives through ``max_missed`` kept frames without a detection (returned with
  ``detected=False`` at its predicted box) and ends on the next one; at most ``max_faces``
  tracks (the largest new faces win).
* **Too small**: the search keeps a track down to ``0.75 * min_face_px`` (hysteresis:
  a face at the limit does not flicker); a track ending while its face was below
  ``min_face_px`` ends as too small. When a search with nothing tracked finds nothing, a
  probe of the same regions at the same scale (the cascade's native window: faces
  0.75-1x ``min_face_px``, a few more pyramid levels) tells "too small" from "none found".

Feed it kept frames in stamp order; :meth:`FaceTracker.reset` on a stream restart or clock
jump (an older stamp resets by itself). Faces come largest first (primary: ``faces[0]``).
The answer types live in :mod:`avemo_ros.face_tracks`.
"""
from __future__ import annotations

import math
import random
import string
import time
from typing import Optional

import cv2
import numpy as np

from .face_detectors import DEFAULT_DETECTOR, Detection, Detector, iou, make_detector
from .face_frames import Box, VideoFeatureConfig, to_grey
from .face_tracks import (NS, FrameResult, NoFace, Track, TrackedFace, TrackerConfig,
                          TrackerStats, box_from_centre)

#: Around a tracked face (in face widths / heights from its centre), changes are that
#: person's own motion: change scans leave them to the track.
MASK_SIDE, MASK_ABOVE, MASK_BELOW = 1.5, 1.2, 3.0


class FaceTracker:
    """Faces with ids over a stream of kept frames (see the module doc); ``detector``
    None: :data:`~avemo_ros.face_detectors.DEFAULT_DETECTOR`."""

    def __init__(self, config: TrackerConfig = TrackerConfig(),
                 detector: Optional[Detector] = None):
        self.config = config
        self.detector = detector if detector is not None else make_detector(DEFAULT_DETECTOR)
        self._rng = random.Random(config.id_seed)
        self._issued: set[str] = set()
        self.stats = TrackerStats()
        self.reset()
        self.stats.resets = 0

    @classmethod
    def for_video_config(cls, video: VideoFeatureConfig, detector: Optional[Detector] = None,
                         cascade_path: Optional[str] = None, **overrides) -> "FaceTracker":
        """The tracker matching a bundle's face preprocessing: its minimum face
        (``min_face_camera_px``, 0: the 320-px-wide rule), search window and cascade
        settings; ``overrides`` replace :class:`TrackerConfig` fields."""
        if detector is None:
            detector = make_detector(DEFAULT_DETECTOR, cascade_path=cascade_path,
                                     window_px=video.min_face_px,
                                     scale_factor=video.scale_factor,
                                     min_neighbors=video.min_neighbors)
        cfg = {"min_face_px": video.min_face_camera_px,
               "legacy_detect_width": video.detect_width, "legacy_window_px": video.min_face_px}
        cfg.update(overrides)
        return cls(TrackerConfig(**cfg), detector)

    def reset(self) -> None:
        """Forget every track (stream restart, clock jump); the next frame is searched whole.
        Ids are never reused."""
        self._tracks: list[Track] = []
        self._last_ns: Optional[int] = None
        self._last_full_ns: Optional[int] = None
        self._since_full = 0
        self._since_scan = 0
        self._force_full = True
        self._force_scan = False
        self._reference: Optional[np.ndarray] = None  # coarse grey of the last search
        self._idle_reason = NoFace.NONE_FOUND
        self.stats.resets += 1

    @property
    def tracks(self) -> list[TrackedFace]:
        """The live tracks as of the last frame (confirmed ones, largest first)."""
        return self._confirmed(self._last_ns or 0)

    def update(self, stamp_ns: int, grey: np.ndarray) -> list[TrackedFace]:
        """One kept frame -> its faces, largest first (see :meth:`update_frame`)."""
        return list(self.update_frame(stamp_ns, grey).faces)

    def update_frame(self, stamp_ns: int, grey: np.ndarray) -> FrameResult:
        """One kept frame (stamp in ns, grey uint8 or RGB) -> :class:`FrameResult`."""
        t0 = time.perf_counter()
        cfg = self.config
        was_reset = False
        if self._last_ns is not None and stamp_ns < self._last_ns:
            self.reset()
            was_reset = True
        if grey.ndim != 2:
            grey = to_grey(grey)
        H, W = grey.shape[:2]
        min_face = cfg.min_face_for(W)
        search = self._search_due(stamp_ns)
        detections: dict[str, Detection] = {}
        found: list[Detection] = []
        fresh: list[Detection] = []
        regions: list[tuple[int, int, int, int]] = []
        if search != "tracks":
            coarse = self._coarse(grey)
            if search == "changes":
                regions = self._changed_regions(coarse, grey.shape, stamp_ns, min_face)
                if regions is None:  # most of the frame changed: search it all, unless
                    search = "full"  # that was done less than min_full_interval_s ago
                    if stamp_ns - self._last_full_ns < cfg.min_full_interval_s * NS:
                        search, regions = "tracks", []
                        self._since_scan, self._force_scan = -1, False  # next: a scan later
        if search == "tracks":
            self._since_full += 1
            self._since_scan += 1
        else:
            if search == "full":
                regions = [(0, 0, W, H)]
                self.stats.full_detections += 1
                self._last_full_ns, self._since_full, self._force_full = stamp_ns, 0, False
            else:
                self.stats.change_scans += 1
                self._since_full += 1
            self._since_scan, self._force_scan = 0, False
            self._reference = coarse
            self.stats.regions_scanned += len(regions)
            found = self._detect_in(grey, regions, min_face)
            detections, fresh = self._associate(found, stamp_ns)
        claimed = [d.box for d in detections.values()]
        for tr in sorted(self._tracks, key=lambda t: (t.missed, -t.hits)):
            if tr.id in detections:
                continue
            d = self._search_around(tr, grey, stamp_ns, min_face, claimed)
            if d is not None:
                detections[tr.id] = d
                claimed.append(d.box)
        for tr in self._tracks:
            if tr.id in detections:
                tr.hit(detections[tr.id], stamp_ns)
            else:
                tr.miss()
            tr.age += 1
        started = self._start_tracks(fresh, stamp_ns)
        ended = self._merge_and_end(min_face)
        if ended:
            self._force_scan = True  # look again for whoever was lost, at once
        small: tuple[Box, ...] = ()
        if search != "tracks" and not self._tracks:
            if cfg.probe_too_small and not found and regions:
                self.stats.probes += 1
                small = tuple(d.box for d in self._detect_in(
                    grey, regions, min_face * self._floor(), min_face, scale_px=min_face))
            if small or any(r is NoFace.TOO_SMALL for _, r in ended):
                self._idle_reason = NoFace.TOO_SMALL
            elif search == "full":  # a changes-only scan knows nothing of the rest
                self._idle_reason = NoFace.NONE_FOUND
        faces = self._confirmed(stamp_ns)
        if any(f.detected for f in faces):
            reason = None
        elif faces:  # tracked, none found this frame: they coast
            reason = NoFace.LOST
        elif ended:
            reason = (NoFace.TOO_SMALL if any(r is NoFace.TOO_SMALL for _, r in ended)
                      else NoFace.LOST)
        else:
            reason = self._idle_reason
        self._last_ns = stamp_ns
        cost = time.perf_counter() - t0
        self.stats.frames += 1
        self.stats.time_s += cost
        if reason is not None:
            self.stats.no_face[reason] += 1
        return FrameResult(stamp_ns, tuple(faces), reason, search, tuple(started),
                           tuple(ended), small, was_reset, cost)

    # -- internals ------------------------------------------------------------------------

    def _floor(self) -> float:
        """Smallest face a track is followed down to, as a share of ``min_face_px``."""
        native = getattr(self.detector, "native_px", 24) / float(
            getattr(self.detector, "window_px", 32))
        return min(1.0, max(self.config.small_floor, native))

    def _search_due(self, stamp_ns: int) -> str:
        """Where to look for new faces this frame: "full", "changes" or "tracks"."""
        cfg = self.config
        if self._force_full or self._last_full_ns is None:
            return "full"
        if self._since_full + 1 >= cfg.full_every_frames or (
                cfg.full_every_s > 0 and stamp_ns - self._last_full_ns >= cfg.full_every_s * NS):
            return "full"
        if self._force_scan or self._since_scan + 1 >= cfg.scan_every_frames:
            return "changes" if cfg.change_threshold > 0 else "full"
        return "tracks"

    def _coarse(self, grey: np.ndarray) -> np.ndarray:
        """The frame averaged over cells of ``change_cell_px`` (what change is judged on)."""
        c = self.config.change_cell_px
        H, W = grey.shape[:2]
        return cv2.resize(grey, (max(1, W // c), max(1, H // c)), interpolation=cv2.INTER_AREA)

    def _changed_regions(self, coarse: np.ndarray, shape: tuple[int, int], stamp_ns: int,
                         min_face: float) -> Optional[list[tuple[int, int, int, int]]]:
        """Boxes (x0, y0, x1, y1, image pixels) where the frame changed since the last
        search, away from the tracked faces; None when that is most of the frame (search it
        all)."""
        cfg = self.config
        ref = self._reference
        if ref is None or ref.shape != coarse.shape:
            return None
        H, W = shape[:2]
        sy, sx = H / coarse.shape[0], W / coarse.shape[1]
        mask = (cv2.absdiff(coarse, ref) > cfg.change_threshold).astype(np.uint8)
        for tr in self._tracks:  # a tracked person's head, shoulders and chest move with
            cx, cy, w, h = tr.predict(stamp_ns)  # the face: the track follows them
            x0, x1 = cx - MASK_SIDE * w, cx + MASK_SIDE * w
            y0, y1 = cy - MASK_ABOVE * h, cy + MASK_BELOW * h
            mask[max(0, int(y0 / sy)):max(0, int(math.ceil(y1 / sy))),
                 max(0, int(x0 / sx)):max(0, int(math.ceil(x1 / sx)))] = 0
        if not mask.any():
            return []
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        pad = 0.5 * min_face  # a face may stick out of what changed
        boxes = []
        for x, y, w, h, _area in stats[1:]:
            boxes.append([max(0, int(x * sx - pad)), max(0, int(y * sy - pad)),
                          min(W, int(math.ceil((x + w) * sx + pad))),
                          min(H, int(math.ceil((y + h) * sy + pad)))])
        merged = True
        while merged:  # overlapping boxes become one
            merged = False
            for i in range(len(boxes)):
                for j in range(i + 1, len(boxes)):
                    a, b = boxes[i], boxes[j]
                    if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                        boxes[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]),
                                    max(a[3], b[3])]
                        del boxes[j]
                        merged = True
                        break
                if merged:
                    break
        if sum((b[2] - b[0]) * (b[3] - b[1]) for b in boxes) > 0.6 * W * H:
            return None
        return [tuple(b) for b in boxes]

    def _detect_in(self, grey: np.ndarray, regions, min_face: float,
                   max_face: Optional[float] = None, scale_px: Optional[float] = None
                   ) -> list[Detection]:
        """Detections in each region, in image pixels."""
        out = []
        for x0, y0, x1, y1 in regions:
            if min(x1 - x0, y1 - y0) < min_face * self._floor():
                continue
            sub = grey if (x0, y0, x1, y1) == (0, 0, grey.shape[1], grey.shape[0]) \
                else grey[y0:y1, x0:x1]
            for d in self.detector.detect(sub, min_face, max_face, scale_px=scale_px):
                out.append(Detection((d.box[0] + x0, d.box[1] + y0, d.box[2], d.box[3]),
                                     d.score))
        return out

    def _pair_score(self, pred: tuple[float, float, float, float], box: Box) -> float:
        """How well a detection fits a predicted box: > 0 when it may be the same face."""
        cx, cy, w, h = pred
        overlap = iou(box_from_centre(cx, cy, w, h), box)
        if overlap >= self.config.match_iou:
            return 1.0 + overlap
        size = max(w, h)
        dist = math.hypot(box[0] + box[2] / 2.0 - cx, box[1] + box[3] / 2.0 - cy)
        ratio = box[3] / h if h > 0 else 0.0
        if dist <= self.config.match_centre * size and 1 / 1.5 <= ratio <= 1.5:
            return 1.0 - dist / (self.config.match_centre * size + 1e-9)
        return 0.0

    def _associate(self, found: list[Detection], stamp_ns: int
                   ) -> tuple[dict[str, Detection], list[Detection]]:
        """Full-frame detections -> (track id -> detection, the unmatched detections)."""
        pairs = []
        for tr in self._tracks:
            pred = tr.predict(stamp_ns)
            for j, d in enumerate(found):
                s = self._pair_score(pred, d.box)
                if s > 0:
                    pairs.append((s, tr.id, j))
        taken: dict[str, Detection] = {}
        used: set[int] = set()
        for s, tid, j in sorted(pairs, key=lambda p: -p[0]):
            if tid not in taken and j not in used:
                taken[tid] = found[j]
                used.add(j)
        return taken, [d for j, d in enumerate(found) if j not in used]

    def _search_around(self, tr: Track, grey: np.ndarray, stamp_ns: int, min_face: float,
                       claimed: list[Box]) -> Optional[Detection]:
        """The track's face in a region about its predicted box, at its size."""
        cfg = self.config
        cx, cy, w, h = tr.predict(stamp_ns)
        H, W = grey.shape[:2]
        half_w, half_h = cfg.roi_scale * w / 2.0, cfg.roi_scale * h / 2.0
        x0, y0 = max(0, int(cx - half_w)), max(0, int(cy - half_h))
        x1, y1 = min(W, int(math.ceil(cx + half_w))), min(H, int(math.ceil(cy + half_h)))
        lo = max(h / cfg.size_ratio, min_face * self._floor())
        hi = h * cfg.size_ratio
        if x1 - x0 < lo or y1 - y0 < lo:
            return None
        self.stats.roi_searches += 1
        found = self.detector.detect(grey[y0:y1, x0:x1], lo, hi, window_px=cfg.roi_window_px,
                                     scale_step=cfg.roi_scale_step,
                                     min_neighbors=cfg.roi_min_neighbors)
        best, best_s = None, -1.0
        for d in found:
            box = (d.box[0] + x0, d.box[1] + y0, d.box[2], d.box[3])
            if any(iou(box, c) > 0.3 for c in claimed):
                continue
            s = self._pair_score((cx, cy, w, h), box)
            if s <= 0:  # inside the region but off the prediction: nearer is likelier
                dist = math.hypot(box[0] + box[2] / 2.0 - cx, box[1] + box[3] / 2.0 - cy)
                s = -dist / (w + h) + 0.5  # still > -1 inside the region
            if s > best_s:
                best, best_s = Detection(box, d.score), s
        return best

    def _new_id(self) -> str:
        while True:
            tid = "".join(self._rng.choices(string.ascii_lowercase, k=5))
            if tid not in self._issued:
                self._issued.add(tid)
                return tid

    def _start_tracks(self, fresh: list[Detection], stamp_ns: int) -> list[str]:
        started = []
        for d in sorted(fresh, key=lambda d: -d.box[2] * d.box[3]):
            if len(self._tracks) >= self.config.max_faces:
                break
            if any(iou(d.box, box_from_centre(t.cx, t.cy, t.w, t.h)) > self.config.dedupe_iou
                   for t in self._tracks):
                continue
            x, y, w, h = d.box
            tr = Track(self._new_id(), x + w / 2.0, y + h / 2.0, float(w), float(h),
                        stamp_ns, stamp_ns, d.score)
            self._tracks.append(tr)
            self.stats.tracks_started += 1
            if tr.hits >= self.config.min_hits:
                started.append(tr.id)
        return started

    def _merge_and_end(self, min_face: float) -> list[tuple[str, NoFace]]:
        cfg = self.config
        ended: list[tuple[str, NoFace]] = []
        keep: list[Track] = []
        for tr in sorted(self._tracks, key=lambda t: (-t.hits, t.first_ns)):
            box = box_from_centre(tr.cx, tr.cy, tr.w, tr.h)
            if any(iou(box, box_from_centre(k.cx, k.cy, k.w, k.h)) > cfg.dedupe_iou for k in keep):
                if tr.hits >= cfg.min_hits:
                    ended.append((tr.id, NoFace.LOST))
                continue
            if tr.missed > cfg.max_missed:
                if tr.hits >= cfg.min_hits:
                    ended.append((tr.id, NoFace.TOO_SMALL if tr.h < min_face else NoFace.LOST))
                continue
            keep.append(tr)
        order = {id(t): i for i, t in enumerate(self._tracks)}
        self._tracks = sorted(keep, key=lambda t: order[id(t)])
        return ended

    def _confirmed(self, stamp_ns: int) -> list[TrackedFace]:
        faces = [t.view(stamp_ns) for t in self._tracks if t.hits >= self.config.min_hits]
        return sorted(faces, key=lambda f: -f.area)
