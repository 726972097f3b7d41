"""The split graph's halves: one modality's estimate of a window, and their fusion (no ROS).

A modality node (audio or video) runs a :class:`~avemo_ros.pipeline.StreamingPipeline` fed
with its one stream and turns every window outcome into a :class:`ModalityWindow`
(:func:`modality_window`): the window, the bundle's model id and, per estimate (audio: at
most one; video: one per tracked face, primary first), the modality's probabilities and
the output of its network that the fusion network consumes. The fusion node fuses an
audio and a video ModalityWindow of the same window end with :func:`fuse_windows`, through
the same code the all-in-one pipeline uses (:func:`~avemo_ros.window_faces.fused_results`),
so both give the same estimate for the same window.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .estimator import AudioBranch, EmotionResult, VideoBranch
from .face_frames import FaceStack
from .speech_gate import SpeechDecision
from .window_faces import WindowFaces, fused_results

AUDIO_MODALITY, VIDEO_MODALITY = "audio", "video"


@dataclass(frozen=True)
class ModalityPart:
    """One estimate of a modality in a window: the audio, or one tracked face's video.

    ``fusion_input``: the modality network's output the fusion network consumes (None:
    the bundle has no fusion network); ``face_id`` / ``box``: the face (video; "" and
    None for audio, and ``face_id`` "" without tracking)."""

    probabilities: np.ndarray
    fusion_input: Optional[np.ndarray] = None
    face_id: str = ""
    box: Optional[tuple[int, int, int, int]] = None


@dataclass
class ModalityWindow:
    """What one modality node found in one window (the ModalityEstimate message's twin).

    ``parts`` empty: the modality is absent from the window (no usable audio, no face, or
    the window was skipped / dropped / failed: ``status`` says which).
    ``speech_detected`` / ``speech_fraction``: the speech gate's verdict (audio; None /
    NaN when no gate ran)."""

    modality: str
    start_ns: int
    end_ns: int
    model_id: str
    status: str
    parts: list[ModalityPart] = field(default_factory=list)
    speech_detected: Optional[bool] = None
    speech_fraction: float = float("nan")
    inference_time: float = 0.0
    frame_id: str = ""
    hop_s: float = 0.0  # the node's window grid (window ends are its multiples); 0: unknown

    @property
    def present(self) -> bool:
        """Whether the modality contributes to this window."""
        return bool(self.parts)


def modality_window(outcome: Any, modality: str, model_id: str, frame_id: str = "",
                    hop_s: float = 0.0) -> ModalityWindow:
    """A modality pipeline's :class:`~avemo_ros.pipeline.WindowOutcome` as a ModalityWindow."""
    r: Optional[EmotionResult] = outcome.result
    speech = getattr(outcome, "speech", None)
    mw = ModalityWindow(modality, outcome.start_ns, outcome.end_ns, model_id, outcome.status,
                        frame_id=frame_id, hop_s=hop_s)
    if speech is not None:
        mw.speech_detected, mw.speech_fraction = speech.speech_detected, speech.speech_fraction
    if r is None:
        return mw
    mw.inference_time = float(r.inference_time)
    if modality == AUDIO_MODALITY:
        mw.speech_detected, mw.speech_fraction = r.speech_detected, r.speech_fraction
        if r.audio_probabilities is not None:
            mw.parts.append(ModalityPart(r.audio_probabilities, r.audio_fusion_input))
    else:
        mw.parts.extend(ModalityPart(f.video_probabilities, f.video_fusion_input, f.face_id,
                                     tuple(int(v) for v in f.box))
                        for f in r.faces if f.video_probabilities is not None)
    return mw


def _outputs(estimator: Any, part: ModalityPart) -> dict[str, np.ndarray]:
    source = estimator.fusion_source
    return {} if source is None or part.fusion_input is None else {source: part.fusion_input}


def fuse_windows(estimator: Any, audio: Optional[ModalityWindow],
                 video: Optional[ModalityWindow]) -> Optional[EmotionResult]:
    """The window's EmotionResult from its two halves (either None: that node sent nothing
    in time), as the all-in-one pipeline computes it: each face's video fused with the one
    audio, the largest face primary; a missing modality leaves that modality's estimate.
    None when neither is present."""
    side = audio if audio is not None else video
    if side is None:
        return None
    branch = AudioBranch(None, None, None)
    speech = None
    if audio is not None:
        if audio.present:
            part = audio.parts[0]
            branch = AudioBranch(None, np.asarray(part.probabilities, np.float32),
                                 _outputs(estimator, part))
        if audio.speech_detected is not None:
            speech = SpeechDecision(bool(audio.speech_detected), float(audio.speech_fraction),
                                    np.zeros(0, np.float32), float("nan"), float("nan"), 0.0)
    if video is not None and video.present:
        faces = WindowFaces([(p.face_id, VideoBranch(
            FaceStack(None, True, 1.0, p.box), np.asarray(p.probabilities, np.float32),
            _outputs(estimator, p))) for p in video.parts], None)
    else:
        faces = WindowFaces([("", VideoBranch(FaceStack(None, False, 0.0, None), None, None))],
                            None)
    result = fused_results(estimator, side.start_ns, side.end_ns, branch, faces, speech=speech)
    if result is not None:
        result.inference_time += sum(m.inference_time for m in (audio, video) if m is not None)
    return result
