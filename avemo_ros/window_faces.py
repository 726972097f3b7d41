"""The faces of a window: each kept frame's faces in, one video branch and one fused
estimate per tracked face out, and the reason when a window has no face.

A pipeline gets each kept frame's faces from a *face source* (``update_frame(stamp_ns,
grey) -> FrameResult``, ``reset()``):

* :class:`~avemo_ros.face_tracking.FaceTracker` (live nodes and offline evaluation):
  detect, then track; several faces, each with a stable id;
* :class:`DetectorFaces`: the bundle's detector on every whole frame, its largest face
  without an id: how training crops its one actor per clip.

:func:`window_faces` groups a window's frame results by face id (at most ``max_faces``,
largest first), builds each face's stack and runs the video network on it;
:func:`fused_results` fuses each face's video with the window's one audio branch. The
primary face, whose estimate goes on ``emotion``, is the face with the largest median box
over the window: the person nearest the camera, the one a robot most likely talks to.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from .estimator import EmotionResult
from .face_detectors import DEFAULT_DETECTOR, make_detector
from .face_frames import Box
from .face_tracking import FaceTracker
from .face_tracks import FrameResult, NoFace, TrackedFace, boxes_by_face, window_reason

#: Counter of the windows whose frames show no face, by reason (plain counters, no WARN:
#: an empty scene is normal).
NO_FACE_COUNTERS = {NoFace.NONE_FOUND: "windows_face_none_found",
                    NoFace.TOO_SMALL: "windows_face_too_small",
                    NoFace.LOST: "windows_face_lost"}


class DetectorFaces:
    """A face source that searches every frame whole with ``detector`` (``detect(grey) ->
    box or None``, e.g. :class:`~avemo_ros.face_frames.FaceDetector`) and keeps its
    largest face, without an id."""

    def __init__(self, detector: Any):
        self.detector = detector

    def update_frame(self, stamp_ns: int, grey: np.ndarray) -> FrameResult:
        """One frame's face (or none found)."""
        box = self.detector.detect(grey)
        if box is None:
            return FrameResult(stamp_ns, (), NoFace.NONE_FOUND, "full")
        face = TrackedFace("", tuple(int(v) for v in box), True, 1, 0, 1, stamp_ns, stamp_ns,
                           1.0)
        return FrameResult(stamp_ns, (face,), None, "full")

    def reset(self) -> None:
        """Nothing to forget: every frame stands alone."""


def face_source(estimator: Any, tracking: bool = True, max_faces: int = 3,
                detector: str = DEFAULT_DETECTOR, detector_model: Optional[str] = None) -> Any:
    """The face source of a pipeline over ``estimator``'s bundle: a
    :class:`~avemo_ros.face_tracking.FaceTracker` with ``detector`` (a name of
    :data:`~avemo_ros.face_detectors.DETECTORS`; ``detector_model``: its model file, for
    those that need one) at the bundle's minimum face, or without ``tracking`` a
    :class:`DetectorFaces` over the bundle's own detector. Raises DetectorError /
    CascadeNotFoundError naming the fix when the detector cannot be made."""
    if not tracking:
        return DetectorFaces(estimator.detector)
    video = estimator.manifest.video
    cascade = getattr(estimator, "cascade_path", None)
    made = None
    if detector != DEFAULT_DETECTOR or detector_model:
        options = ({"window_px": video.min_face_px, "scale_factor": video.scale_factor,
                    "min_neighbors": video.min_neighbors} if detector.startswith("haar_") else {})
        made = make_detector(detector, model_path=detector_model or None,
                             cascade_path=cascade if detector.startswith("haar_") else None,
                             **options)
    return FaceTracker.for_video_config(video, detector=made, cascade_path=cascade,
                                        max_faces=max_faces)


@dataclass(frozen=True)
class FaceEstimate:
    """One tracked face's fused estimate in a window (the primary's too).

    ``box``: the face's median box over the window (x, y, w, h, camera pixels);
    ``probabilities``: fused over the window's audio and this face's video;
    ``modalities``: the bitmask those came from; ``video_fusion_input``: this face's
    video output the fusion network consumes (None: no fusion network).
    """

    face_id: str
    box: Box
    label: str
    confidence: float
    probabilities: np.ndarray
    video_probabilities: Optional[np.ndarray]
    modalities: int
    valence: float
    arousal: float
    video_fusion_input: Optional[np.ndarray] = None


@dataclass
class WindowFaces:
    """A window's video branches: ``branches`` ((face id, VideoBranch), largest face
    first; one id-less branch without a face when none has enough detections) and
    ``reason``: why no face has a video modality (None when one has)."""

    branches: list[tuple[str, Any]]
    reason: Optional[NoFace]


def window_faces(estimator: Any, greys: Sequence[np.ndarray],
                 frames: Sequence[Optional[FrameResult]], bad_frames: int,
                 max_faces: int) -> WindowFaces:
    """Each face's video branch over a window's decoded frames (``greys``) and their face
    results (``frames``, same order; None: not searched). ``estimator``: anything with
    ``video_branch(greys, boxes, bad_frames)``."""
    results = [f if f is not None else FrameResult(0, (), NoFace.NONE_FOUND, "tracks")
               for f in frames]
    per_face = boxes_by_face(results, max_faces=max_faces)
    branches = []
    for face_id, boxes in per_face.items():
        video = estimator.video_branch(list(greys), boxes, bad_frames)
        if video.faces.face_found:
            branches.append((face_id, video))
    if branches:
        return WindowFaces(branches, None)
    empty = estimator.video_branch(list(greys), [None] * len(greys), bad_frames)
    return WindowFaces([("", empty)], window_reason(results) or NoFace.NONE_FOUND)


def fused_results(estimator: Any, start_ns: int, end_ns: int, audio: Any, faces: WindowFaces,
                  critical_time: float = 0.0, speech: Any = None) -> Optional[Any]:
    """The window's result: each face's video fused with the shared ``audio`` branch; the
    primary face's result carries every face's :class:`FaceEstimate` in ``faces`` (primary
    first) and its own id in ``face_id``. None when no modality is usable."""
    out = []
    for face_id, video in faces.branches:
        r = estimator.result(start_ns, end_ns, audio, video, critical_time=critical_time,
                             speech=speech)
        if r is None:
            continue
        if isinstance(r, EmotionResult):  # (a FeatureExtractor gives WindowFeatures)
            r.face_id = face_id
        out.append(r)
    if not out:
        return None
    primary = out[0]
    if isinstance(primary, EmotionResult):
        primary.faces = [FaceEstimate(r.face_id, r.face_box, r.label, r.confidence,
                                      r.probabilities, r.video_probabilities, r.modalities,
                                      r.valence, r.arousal, r.video_fusion_input)
                         for r in out if r.face_found and r.face_box is not None]
    return primary
