"""Parameters of the perception node: defaults, descriptions, allowed values.

The defaults are also in config/perception.yaml; the README's table lists them.
"""
from __future__ import annotations

import math
from typing import Any

from ..audio_codec import AUDIO_MSG_TYPES
from ..backends import BACKENDS
from ..face_detectors import DEFAULT_DETECTOR, DETECTORS
from .audio_input import CLOCK_CHOICES, CODING_CHOICES, RELIABILITY_CHOICES
from ..pipeline import PipelineConfig
from ..window_faces import face_source
from ..speech_gate import SpeechGate, SpeechGateError, bundle_gate_config
from .params import ParamSpec

PARAMS = (
    ParamSpec("model_dir", "", "Model bundle directory (manifest.json + ONNX/engines)."),
    ParamSpec("backend", "auto", "Inference backend; auto = TensorRT when engines and a GPU "
              "exist, else ONNX Runtime.", choices=BACKENDS),
    ParamSpec("threads", 1, "CPU threads per ONNX Runtime session (0 = library default).",
              range=(0, 64)),
    ParamSpec("hop_s", 1.0, "Seconds between estimates (window length comes from the model).",
              range=(0.1, 10.0)),
    ParamSpec("grace_s", 1.0, "How long past a window's end to wait for a late modality before "
              "estimating without it, seconds.", range=(0.0, 5.0)),
    ParamSpec("absolute_window_grid", False, "Window ends on multiples of hop_s (the split "
              "graph's grid, always on in audio_node and video_node) instead of from the first "
              "input's stamp."),
    ParamSpec("min_video_frames", 0, "Distinct camera frames a window needs for a video "
              "modality; 0: half the model's frames per window (10 of the demo bundle's 20).",
              range=(0, 1000)),
    ParamSpec("clock_offset_tolerance_s", 1.0, "Camera and microphone stamps may disagree "
              "(each against its arrival time) by this much before clock_offset is reported, "
              "seconds.", range=(0.01, 60.0)),
    ParamSpec("max_waiting_windows", 0, "Complete windows that may wait for compute; beyond "
              "it the oldest is dropped (windows_dropped). 0: window / hop + 2.",
              range=(0, 1000)),
    ParamSpec("image_transport", "raw", "Camera input: raw = sensor_msgs/Image on 'image', "
              "compressed = sensor_msgs/CompressedImage on 'image/compressed'.",
              choices=("raw", "compressed")),
    ParamSpec("max_image_pixels", 4096 * 4096, "Images with more pixels are rejected.",
              range=(1, 100_000_000)),
    ParamSpec("audio_msg_type", "AudioDataStamped", "Microphone message type: AudioDataStamped "
              "or AudioData (ros-drivers audio_capture, the released audio_common_msgs) or "
              "AudioStamped (mgonzs13 audio_common).", choices=AUDIO_MSG_TYPES),
    ParamSpec("audio_coding_format", "auto", "Coding of AudioData bytes when no audio_info is "
              "published: auto tells MP3 from raw PCM (wave) by the bytes; audio_info wins.",
              choices=CODING_CHOICES),
    ParamSpec("audio_sample_format", "S16LE", "PCM sample format of AudioData bytes when no "
              "audio_info is published (AudioStamped carries its own).",
              choices=("S16LE", "S16BE", "S32LE", "S32BE", "S24LE", "S24BE", "F32LE", "F32BE",
                       "U8", "S8")),
    ParamSpec("audio_channels", 1, "Channels of AudioData PCM when no audio_info is published.",
              range=(1, 64)),
    ParamSpec("audio_sample_rate", 16000, "Sample rate of AudioData PCM when no audio_info is "
              "published, Hz.", range=(1000, 384000)),
    ParamSpec("audio_reliability", "auto", "Audio subscription reliability: auto = reliable, "
              "best effort once a best-effort publisher is on the topic; best_effort matches "
              "every publisher; reliable only reliable ones.", choices=RELIABILITY_CHOICES),
    ParamSpec("audio_clock", "auto", "auto: audio header stamps far (>10 s) from the node clock "
              "and the camera's are mapped onto the node clock by a fixed offset; header: "
              "trust them.", choices=CLOCK_CHOICES),
    ParamSpec("min_face_px", 0, "Smallest face to find, in pixels of the camera image (face "
              "height); detection scales the image so that such a face fills the cascade's "
              "smallest window. 0: the bundle's setting (64 for bundles made now).",
              range=(0, 4096)),
    ParamSpec("face_tracking", True, "Detect faces at a low rate and track them in between, "
              "each with a stable id (REP-155 style); false: detect on every kept frame, "
              "largest face only (as training crops)."),
    ParamSpec("max_faces", 3, "Tracked faces estimated per window, largest first: each gets "
              "its own video estimate fused with the shared audio; the largest (the primary "
              "face) goes on 'emotion'.", range=(1, 16)),
    ParamSpec("face_detector", DEFAULT_DETECTOR, "The tracker's face detector (haar_alt2: "
              "OpenCV's cascade chosen by recall on real photographs; yunet needs "
              "face_detector_model).", choices=tuple(DETECTORS)),
    ParamSpec("face_detector_model", "", "Model file of a detector that needs one (yunet: "
              "face_detection_yunet_*.onnx; mtcnn: its ONNX folder, empty: the one "
              "scripts/setup.sh exported); nothing downloads it."),
    ParamSpec("hri_output", True, "Also publish every tracked face's estimate the ROS4HRI way "
              "(REP-155): hri_msgs/Expression on /humans/faces/<id>/expression and "
              "hri_msgs/IdsList on /humans/faces/tracked (needs hri_msgs)."),
    ParamSpec("speech_gate", True, "Judge each window's audio with the Silero VAD speech gate: "
              "a window with less speech than min_speech_fraction has no audio modality (its "
              "audio never reaches the audio network; speech_detected false). false: all "
              "audio is used as if it were speech."),
    ParamSpec("min_speech_fraction", -1.0, "Share of a window's 32 ms chunks that must be "
              "speech for the window to have audio; -1: the bundle's (0.2 when it records "
              "none).", range=(-1.0, 1.0)),
    ParamSpec("speech_threshold", -1.0, "Silero VAD probability from which a chunk counts as "
              "speech; -1: the bundle's (0.5 when it records none).", range=(-1.0, 0.99)),
    ParamSpec("vad_model", "", "Silero VAD ONNX file; empty: silero-vad/silero_vad.onnx under "
              "$AVEMO_WEIGHTS or the source tree's data/weights (fetched by setup, or "
              "python -m avemo_ros.tools.fetch_weights silero-vad)."),
    ParamSpec("haar_cascade", "", "Haar cascade XML for face detection; empty: OpenCV's bundled "
              "one, else the opencv-data one under /usr/share/opencv4/haarcascades."),
    ParamSpec("warmup_runs", 2, "Inference runs at configure so the first estimate is not late.",
              range=(0, 20)),
    ParamSpec("diagnostics_period_s", 1.0, "Period of /diagnostics, seconds.", range=(0.1, 60.0)),
    ParamSpec("debug_rate_hz", 5.0, "Most annotated images per second on ~/debug_image and "
              "~/debug_image/compressed (one per estimate, only while someone subscribes); "
              "0: no debug image publishers.", range=(0.0, 30.0)),
    ParamSpec("log_throttle_s", 5.0, "Minimum seconds between repeats of one input warning.",
              range=(0.0, 3600.0)),
)


def pipeline_config(cfg: dict[str, Any], estimator: Any) -> PipelineConfig:
    """The pipeline settings from the node's parameter values, for ``estimator``'s bundle
    (its window length)."""
    window_s = estimator.manifest.audio.window_s
    waiting = cfg["max_waiting_windows"] or math.ceil(window_s / cfg["hop_s"]) + 2
    return PipelineConfig(hop_s=cfg["hop_s"], grace_s=cfg["grace_s"],
                          min_video_frames=cfg["min_video_frames"],
                          clock_offset_tolerance_s=cfg["clock_offset_tolerance_s"],
                          max_waiting_windows=waiting, face_tracking=cfg["face_tracking"],
                          max_faces=cfg["max_faces"], face_detector=cfg["face_detector"],
                          face_detector_model=cfg["face_detector_model"] or None,
                          absolute_grid=cfg["absolute_window_grid"])


def face_source_for(cfg: dict[str, Any], estimator: Any) -> Any:
    """The pipeline's face source from the node's parameter values (raises DetectorError /
    CascadeNotFoundError naming the fix)."""
    return face_source(estimator, cfg["face_tracking"], cfg["max_faces"], cfg["face_detector"],
                       cfg["face_detector_model"] or None)


def estimator_args(cfg: dict[str, Any]) -> dict[str, Any]:
    """EmotionEstimator keyword arguments from the node's parameter values."""
    return {"bundle_dir": cfg["model_dir"], "backend": cfg["backend"], "threads": cfg["threads"],
            "cascade_path": cfg["haar_cascade"] or None, "min_face_px": cfg["min_face_px"]}


def speech_gate(cfg: dict[str, Any], training: dict) -> "SpeechGate | None":
    """The node's speech gate (None: ``speech_gate`` off) for a bundle's ``training``
    record; raises SpeechGateError (naming both fixes) when the VAD model is missing or
    wrong."""
    if not cfg["speech_gate"]:
        return None
    try:
        return SpeechGate(bundle_gate_config(training, cfg["speech_threshold"],
                                             cfg["min_speech_fraction"], cfg["vad_model"] or None))
    except SpeechGateError as e:
        raise SpeechGateError(f"{e} (or set speech_gate:=false to use all audio)") from None


def configured_text(estimator: Any, gate: "SpeechGate | None", faces: Any,
                    cfg: dict[str, Any], load_s: float) -> str:
    """The node's log line once configured: model, backends, labels, gate, faces."""
    g = gate.config if gate else None
    speech = (f"threshold {g.threshold:g}, min_speech_fraction {g.min_speech_fraction:g}"
              if g else "off")
    detector = getattr(getattr(faces, "detector", None), "name", "")
    return (f"configured: model {estimator.model_id} ({estimator.backend_names}), labels "
            f"{estimator.labels}, speech gate {speech}, faces {type(faces).__name__} "
            f"{detector} (max_faces {cfg['max_faces']}); loaded and warmed up in {load_s:.2f} s")
