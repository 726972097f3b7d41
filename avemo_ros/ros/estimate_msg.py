"""EmotionResult (core) -> avemo_ros/EmotionEstimate message."""
from __future__ import annotations

from typing import Any

from .. import conversions as conv
from ..estimator import AUDIO, EmotionResult
from ..window import NS


def estimate_message(r: EmotionResult, msg_type: Any, frame_id: str, model_id: str,
                     now_ns: int) -> Any:
    """The message of one estimate; ``latency`` is ``now_ns`` minus the window end, s."""
    msg = msg_type()
    msg.header.stamp = conv.ns_to_stamp(r.end_ns)
    msg.header.frame_id = frame_id
    msg.window_start = conv.ns_to_stamp(r.start_ns)
    msg.labels = list(r.labels)
    msg.probabilities = [float(p) for p in r.probabilities]
    msg.label, msg.confidence, msg.modalities = r.label, r.confidence, r.modalities
    msg.audio_probabilities = [] if r.audio_probabilities is None else \
        [float(p) for p in r.audio_probabilities]
    msg.video_probabilities = [] if r.video_probabilities is None else \
        [float(p) for p in r.video_probabilities]
    msg.face_detected = r.face_found
    # no gate ran: speech is assumed wherever the window had audio (the audio was used)
    msg.speech_detected = bool(r.modalities & AUDIO) if r.speech_detected is None \
        else bool(r.speech_detected)
    msg.speech_fraction = float(r.speech_fraction)
    if r.face_box is not None:
        msg.face_box = [int(v) for v in r.face_box]
    msg.valence, msg.arousal = r.valence, r.arousal
    msg.inference_time = float(r.inference_time)
    msg.model_id = model_id
    msg.latency = float((now_ns - r.end_ns) / NS)
    return msg
