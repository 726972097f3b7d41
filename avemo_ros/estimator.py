"""The one pipeline from a window's raw inputs to an emotion estimate.

Live nodes, offline evaluation and training feature extraction all go through
``EmotionEstimator.features`` (training uses it without the networks), so there is a
single implementation of every preprocessing step.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from .audio_features import AudioFeatureConfig, audio_features
from .backends import InferenceBackend, open_backend
from .face_frames import (Box, FaceDetector, FaceStack, VideoFeatureConfig, build_face_stack,
                          to_grey)
from .labels import valence_arousal
from .manifest import LOGITS, Manifest, fusion_source, load_manifest
from .window import Window

AUDIO = 1
VIDEO = 2

#: Input tensor names of the modality networks: audio by feature kind, video.
AUDIO_INPUTS = {"spectrogram": "spectrogram", "frame_features": "audio_frames",
                "summary_features": "audio_summary"}
VIDEO_INPUT = "faces"


@dataclass
class WindowFeatures:
    """Network inputs of one window; None where a modality is missing."""

    audio: Optional[np.ndarray]  # audio features (AudioFeatureConfig.shape) float32
    faces: FaceStack
    timings: dict[str, float] = field(default_factory=dict)
    bad_frames: int = 0  # selected frames that could not be decoded (left out)


@dataclass
class EmotionResult:
    """One estimate (the ROS-free twin of the EmotionEstimate message)."""

    start_ns: int
    end_ns: int
    labels: list[str]
    probabilities: np.ndarray
    label: str
    confidence: float
    modalities: int
    audio_probabilities: Optional[np.ndarray]
    video_probabilities: Optional[np.ndarray]
    face_found: bool
    face_box: Optional[Box]
    valence: float
    arousal: float
    inference_time: float
    timings: dict[str, float]


def softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64).reshape(-1)
    e = np.exp(z - z.max())
    return (e / e.sum()).astype(np.float32)


class FeatureExtractor:
    """Window -> WindowFeatures; caches face detections per frame stamp across windows."""

    def __init__(self, audio_cfg: AudioFeatureConfig, video_cfg: VideoFeatureConfig,
                 cache_size: int = 256, cascade_path: Optional[str] = None):
        self.audio_cfg, self.video_cfg = audio_cfg, video_cfg
        self.detector = FaceDetector(video_cfg, cascade_path=cascade_path)
        self._boxes: OrderedDict[int, Optional[Box]] = OrderedDict()
        self._cache_size = cache_size

    def reset(self) -> None:
        """Forget cached face detections (a new clock: stamps may repeat with new images)."""
        self._boxes.clear()

    def prepare_frame(self, stamp_ns: int, grey: np.ndarray) -> Optional[Box]:
        """Detect (and cache) the face of one grey frame ahead of the windows that use it."""
        if stamp_ns not in self._boxes:
            self._boxes[stamp_ns] = self.detector.detect(grey)
            if len(self._boxes) > self._cache_size:
                self._boxes.popitem(last=False)
        return self._boxes.get(stamp_ns)

    def features(self, window: Window, decode: Callable[[Any], np.ndarray] = lambda p: p
                 ) -> WindowFeatures:
        """Compute the audio features and the face stack; frames are decoded only here."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        spec = None
        if window.audio is not None:
            spec = audio_features(window.audio, window.sample_rate, self.audio_cfg)
        t1 = time.perf_counter()
        timings["audio_features"] = t1 - t0
        greys: list[np.ndarray] = []
        boxes: list[Optional[Box]] = []
        decoded: dict[int, Optional[np.ndarray]] = {}
        bad = 0
        for stamp, payload in zip(window.frame_stamps_ns, window.frames):
            if stamp not in decoded:
                try:
                    decoded[stamp] = to_grey(decode(payload))
                except ValueError:
                    decoded[stamp] = None
                    bad += 1
            grey = decoded[stamp]
            if grey is None:
                continue
            greys.append(grey)
            boxes.append(self.prepare_frame(stamp, grey))
        faces = build_face_stack(greys, boxes, self.video_cfg)
        timings["video_features"] = time.perf_counter() - t1
        return WindowFeatures(audio=spec, faces=faces, timings=timings, bad_frames=bad)


class EmotionEstimator:
    """Loads a model bundle and turns windows into EmotionResults."""

    def __init__(self, bundle_dir: Path | str, backend: str = "auto", threads: int = 0,
                 manifest: Optional[Manifest] = None, cascade_path: Optional[str] = None):
        self.bundle_dir = Path(bundle_dir)
        self.manifest = manifest or load_manifest(self.bundle_dir)
        self.labels = list(self.manifest.labels)
        self.model_id = self.manifest.model_id
        self.extractor = FeatureExtractor(self.manifest.audio, self.manifest.video,
                                          cascade_path=cascade_path)
        self.nets: dict[str, InferenceBackend] = {}
        self.last_bad_frames = 0  # undecodable frames of the last window
        self._fusion_source = fusion_source(self.manifest.models["fusion"])
        try:
            for role, spec in self.manifest.models.items():
                self.nets[role] = open_backend(spec, self.bundle_dir, backend, threads=threads)
        except Exception:
            self.close()
            raise

    @property
    def backend_names(self) -> dict[str, str]:
        return {role: net.name for role, net in self.nets.items()}

    def warmup(self, runs: int = 2) -> None:
        """Run every network (and the feature code) once or more so the first window is fast."""
        a, v = self.manifest.audio, self.manifest.video
        rng = np.random.default_rng(0)
        for _ in range(runs):
            feats = audio_features(rng.standard_normal(a.n_samples).astype(np.float32) * 0.1,
                                   a.sample_rate, a)
            faces = rng.standard_normal(v.shape).astype(np.float32)
            self.infer(feats, faces)

    def _run(self, role: str, x: np.ndarray) -> dict[str, np.ndarray]:
        """Run a modality network on one window's feature array, shaped as its manifest says."""
        spec = self.manifest.models[role].inputs[0]
        return self.nets[role].run({spec.name: np.asarray(x, np.float32).reshape(spec.shape)})

    def infer(self, audio: Optional[np.ndarray], faces: Optional[np.ndarray]
              ) -> tuple[np.ndarray, int, Optional[np.ndarray], Optional[np.ndarray], dict]:
        """Run the networks on whatever modalities are present.

        Returns (fused probabilities, modality bitmask, audio probs, video probs, timings).
        Both present: the fusion network over the two networks' features (intermediate
        fusion) or logits (late fusion), as its input names say; one present: that
        network's own probabilities.
        """
        timings: dict[str, float] = {}
        pa = pv = None
        outs: dict[str, dict[str, np.ndarray]] = {}
        for role, x, prob_key in (("audio", audio, "audio_net"), ("video", faces, "video_net")):
            if x is None:
                continue
            t = time.perf_counter()
            outs[role] = self._run(role, x)
            timings[prob_key] = time.perf_counter() - t
        if "audio" in outs:
            pa = softmax(outs["audio"][LOGITS])
        if "video" in outs:
            pv = softmax(outs["video"][LOGITS])
        mods = (AUDIO if pa is not None else 0) | (VIDEO if pv is not None else 0)
        if mods == AUDIO | VIDEO:
            t = time.perf_counter()
            fusion = self.manifest.models["fusion"]
            a_name, v_name = (t_.name for t_ in fusion.inputs)
            out = self.nets["fusion"].run({a_name: outs["audio"][self._fusion_source],
                                           v_name: outs["video"][self._fusion_source]})
            timings["fusion_net"] = time.perf_counter() - t
            p = softmax(out[LOGITS])
        elif mods:
            p = pa if pa is not None else pv
        else:
            p = np.zeros(0, np.float32)
        return p, mods, pa, pv, timings

    def estimate(self, window: Window, decode: Callable[[Any], np.ndarray] = lambda p: p
                 ) -> Optional[EmotionResult]:
        """One window -> EmotionResult, or None when neither modality is usable.

        ``decode`` turns a frame payload into RGB; a ValueError leaves that frame out.
        """
        t0 = time.perf_counter()
        feats = self.extractor.features(window, decode)
        self.last_bad_frames = feats.bad_frames
        p, mods, pa, pv, timings = self.infer(feats.audio, feats.faces.frames)
        if not mods:
            return None
        timings.update(feats.timings)
        k = int(np.argmax(p))
        valence, arousal = valence_arousal(self.labels, p)
        return EmotionResult(
            start_ns=window.start_ns, end_ns=window.end_ns, labels=self.labels,
            probabilities=p, label=self.labels[k], confidence=float(p[k]), modalities=mods,
            audio_probabilities=pa, video_probabilities=pv, face_found=feats.faces.face_found,
            face_box=feats.faces.box, valence=valence, arousal=arousal,
            inference_time=time.perf_counter() - t0, timings=timings)

    def close(self) -> None:
        """Release the networks (GPU memory for TensorRT)."""
        for net in self.nets.values():
            net.close()
        self.nets.clear()
