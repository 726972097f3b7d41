"""A window's features and networks: the audio branch, the video branch, their fusion.

:class:`~avemo_ros.pipeline.StreamingPipeline` calls the branches separately (video as soon
as a window's frames are final, audio when its audio is); :meth:`EmotionEstimator.estimate`
runs a whole window at once; training extracts the same features (:class:`FeatureExtractor`).
"""
from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Optional

import numpy as np

from .audio_features import AudioFeatureConfig, audio_features
from .backends import InferenceBackend, open_backend
from .face_frames import (Box, FaceDetector, FaceStack, VideoFeatureConfig, build_face_stack,
                          to_grey)
from .labels import valence_arousal
from .fusion_rule import AUDIO, VIDEO, combine, fusion_source, softmax
from .manifest import LOGITS, Manifest, load_manifest
from .speech_gate import SpeechDecision
from .window import Window

__all__ = ["AUDIO", "VIDEO", "AudioBranch", "EmotionEstimator", "EmotionResult",
           "FeatureExtractor", "VideoBranch", "WindowFeatures", "softmax"]

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
    start_ns: int = 0
    end_ns: int = 0
    speech_fraction: Optional[float] = None  # the speech gate's share (None: no gate/audio)

    @property
    def face_found(self) -> bool:
        return self.faces.face_found


@dataclass
class AudioBranch:
    """The audio network on one window; None fields where the window has no audio."""

    features: Optional[np.ndarray]
    probabilities: Optional[np.ndarray]
    outputs: Optional[dict[str, np.ndarray]]
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class VideoBranch:
    """The video network on one window's face stack; None fields without a face."""

    faces: FaceStack
    probabilities: Optional[np.ndarray]
    outputs: Optional[dict[str, np.ndarray]]
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
    inference_time: float  # seconds of compute for this window (both branches + fusion)
    timings: dict[str, float]
    bad_frames: int = 0  # selected frames left out because they could not be decoded
    critical_time: float = 0.0  # seconds from the window's complete input to the result
    # The speech gate's verdict (None: no gate ran: gate off, or no audio in the window)
    # and the share of the window's 32 ms chunks it heard as speech (NaN: no gate ran).
    speech_detected: Optional[bool] = None
    speech_fraction: float = float("nan")
    # The tracked face this estimate is for ("" none, or no tracker) and, on the primary
    # face's result, every tracked face's estimate (window_faces.FaceEstimate), primary first.
    face_id: str = ""
    faces: list = field(default_factory=list)
    # What the fusion network takes from each branch (features or logits), None where
    # absent or without a fusion network: what the split graph's modality nodes publish.
    audio_fusion_input: Optional[np.ndarray] = None
    video_fusion_input: Optional[np.ndarray] = None


class FeatureExtractor:
    """Window -> WindowFeatures; caches face detections per frame stamp across windows."""

    def __init__(self, audio_cfg: AudioFeatureConfig, video_cfg: VideoFeatureConfig,
                 cache_size: int = 256, cascade_path: Optional[str] = None):
        self.audio_cfg, self.video_cfg = audio_cfg, video_cfg
        self.cascade_path = cascade_path  # the user's cascade file (None: the bundled one)
        self.detector = FaceDetector(video_cfg, cascade_path=cascade_path)
        self._boxes: OrderedDict[int, Optional[Box]] = OrderedDict()
        self._cache_size = cache_size

    @property
    def manifest(self) -> SimpleNamespace:
        """The preprocessing settings, where a pipeline looks for them on an estimator."""
        return SimpleNamespace(audio=self.audio_cfg, video=self.video_cfg)

    # The branch interface of EmotionEstimator, features only: a StreamingPipeline driven
    # with a FeatureExtractor yields WindowFeatures (training's windows) instead of estimates.
    def audio_branch(self, audio: Optional[np.ndarray], sample_rate: int) -> "AudioBranch":
        """The window's audio features (no network)."""
        return AudioBranch(None if audio is None else
                           audio_features(audio, sample_rate, self.audio_cfg), None, None)

    def video_branch(self, greys: list[np.ndarray], boxes: list[Optional[Box]],
                     bad_frames: int = 0) -> "VideoBranch":
        """The window's face stack (no network)."""
        return VideoBranch(build_face_stack(greys, boxes, self.video_cfg), None, None, {},
                           bad_frames)

    #: A pipeline computes the audio features of windows the speech gate rejects too
    #: (training decides from the recorded fraction which windows it learns from).
    keeps_unvoiced_audio = True

    def result(self, start_ns: int, end_ns: int, audio: "AudioBranch", video: "VideoBranch",
               critical_time: float = 0.0, speech: Optional[SpeechDecision] = None
               ) -> WindowFeatures:
        """The window's features (and the speech gate's share, where it ran)."""
        return WindowFeatures(audio=audio.features, faces=video.faces,
                              bad_frames=video.bad_frames, start_ns=start_ns, end_ns=end_ns,
                              speech_fraction=None if speech is None else speech.speech_fraction)

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
        greys, boxes, bad = self.prepared_frames(window, decode)
        faces = build_face_stack(greys, boxes, self.video_cfg)
        timings["video_features"] = time.perf_counter() - t1
        return WindowFeatures(audio=spec, faces=faces, timings=timings, bad_frames=bad)

    def prepared_frames(self, window: Window, decode: Callable[[Any], np.ndarray]
                        ) -> tuple[list[np.ndarray], list[Optional[Box]], int]:
        """(grey frames, face boxes, undecodable frames) of a window's selected frames."""
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
        return greys, boxes, bad


class EmotionEstimator:
    """Loads a model bundle and turns windows into EmotionResults."""

    _fusion_source: Optional[str] = None  # the fusion network's input kind (None: none)

    def __init__(self, bundle_dir: Path | str, backend: str = "auto", threads: int = 0,
                 manifest: Optional[Manifest] = None, cascade_path: Optional[str] = None,
                 min_face_px: int = 0, networks: Optional[frozenset] = None):
        self.bundle_dir = Path(bundle_dir)  # networks: the roles to load (None: every one)
        self.manifest = manifest or load_manifest(self.bundle_dir)
        if min_face_px > 0:  # the camera's smallest face: how detection scales, not the crop
            self.manifest = dataclasses.replace(self.manifest, video=dataclasses.replace(
                self.manifest.video, min_face_camera_px=int(min_face_px)))
        self.labels = list(self.manifest.labels)
        self.model_id = self.manifest.model_id
        self.extractor = FeatureExtractor(self.manifest.audio, self.manifest.video,
                                          cascade_path=cascade_path)
        self.nets: dict[str, InferenceBackend] = {}
        self._fusion_source = (fusion_source(self.manifest.models["fusion"])
                               if "fusion" in self.roles else None)
        try:
            for role, spec in self.manifest.models.items():  # (a split graph node: its own)
                if networks is None or role in networks:
                    self.nets[role] = open_backend(spec, self.bundle_dir, backend, threads=threads)
        except Exception:
            self.close()
            raise

    @property
    def detector(self) -> FaceDetector:
        """The bundle's face detector (training's: one largest face per whole frame)."""
        return self.extractor.detector

    @property
    def cascade_path(self) -> Optional[str]:
        """The cascade file the user gave (None: the bundled one)."""
        return self.extractor.cascade_path

    @property
    def backend_names(self) -> dict[str, str]:
        return {role: net.name for role, net in self.nets.items()}

    def warmup(self, runs: int = 2) -> None:
        """Run the loaded modality networks (and feature code) so the first window is fast."""
        a, v = self.manifest.audio, self.manifest.video
        rng = np.random.default_rng(0)
        for _ in range(runs):
            feats = audio_features(rng.standard_normal(a.n_samples).astype(np.float32) * 0.1,
                                   a.sample_rate, a) if "audio" in self.nets else None
            faces = rng.standard_normal(v.shape).astype(np.float32) if "video" in self.nets \
                else None
            self.infer(feats, faces)

    @property
    def roles(self) -> frozenset:
        """The networks the bundle holds (manifest.ROLE_SETS): without an audio network
        every window is video-only, without a video network audio-only."""
        return frozenset(self.manifest.models)

    def _run(self, role: str, x: np.ndarray) -> dict[str, np.ndarray]:
        """Run a modality network on one window's feature array, shaped as its manifest says."""
        spec = self.manifest.models[role].inputs[0]
        return self.nets[role].run({spec.name: np.asarray(x, np.float32).reshape(spec.shape)})

    def audio_branch(self, audio: Optional[np.ndarray], sample_rate: int) -> AudioBranch:
        """Audio features and the audio network of one window (``audio`` None: no audio;
        a bundle without an audio network leaves every window's audio unused)."""
        if audio is None or "audio" not in self.roles:
            return AudioBranch(None, None, None)
        t0 = time.perf_counter()
        feats = audio_features(audio, sample_rate, self.manifest.audio)
        t1 = time.perf_counter()
        outs = self._run("audio", feats)
        return AudioBranch(feats, softmax(outs[LOGITS]), outs,
                           {"audio_features": t1 - t0, "audio_net": time.perf_counter() - t1})

    def video_branch(self, greys: list[np.ndarray], boxes: list[Optional[Box]],
                     bad_frames: int = 0) -> VideoBranch:
        """Face stack of the sampled grey frames (faces detected already) and the video net."""
        t0 = time.perf_counter()
        faces = build_face_stack(greys, boxes, self.manifest.video)
        t1 = time.perf_counter()
        timings = {"video_features": t1 - t0}
        if faces.frames is None:
            return VideoBranch(faces, None, None, timings, bad_frames)
        outs = self._run("video", faces.frames)
        timings["video_net"] = time.perf_counter() - t1
        return VideoBranch(faces, softmax(outs[LOGITS]), outs, timings, bad_frames)

    def fuse(self, audio: AudioBranch, video: VideoBranch
             ) -> tuple[np.ndarray, int, dict[str, float]]:
        """(fused probabilities, modality bitmask, timings): the fusion network over both
        branches' outputs (features or logits, as its input names say) when both are
        present, else the present one's own probabilities (empty: neither). A modality
        the bundle has no network for is never present."""
        timings: dict[str, float] = {}

        def fusion_net() -> np.ndarray:
            t = time.perf_counter()
            a_name, v_name = (t_.name for t_ in self.manifest.models["fusion"].inputs)
            out = self.nets["fusion"].run({a_name: audio.outputs[self._fusion_source],
                                           v_name: video.outputs[self._fusion_source]})
            timings["fusion_net"] = time.perf_counter() - t
            return softmax(out[LOGITS])

        p, mods = combine(audio.probabilities if "audio" in self.roles else None,
                          video.probabilities if "video" in self.roles else None, fusion_net)
        return p, mods, timings

    def infer(self, audio: Optional[np.ndarray], faces: Optional[np.ndarray]
              ) -> tuple[np.ndarray, int, Optional[np.ndarray], Optional[np.ndarray], dict]:
        """The networks on ready features (audio features, face stack; None: missing; a
        modality the bundle has no network for is left out).

        Returns (fused probabilities, modality bitmask, audio probs, video probs, timings).
        """
        audio = audio if "audio" in self.roles else None
        faces = faces if "video" in self.roles else None
        a = AudioBranch(None, None, None)
        if audio is not None:
            t = time.perf_counter()
            outs = self._run("audio", audio)
            a = AudioBranch(audio, softmax(outs[LOGITS]), outs,
                            {"audio_net": time.perf_counter() - t})
        v = VideoBranch(FaceStack(faces, faces is not None, 1.0, None), None, None)
        if faces is not None:
            t = time.perf_counter()
            outs = self._run("video", faces)
            v = VideoBranch(v.faces, softmax(outs[LOGITS]), outs,
                            {"video_net": time.perf_counter() - t})
        p, mods, timings = self.fuse(a, v)
        return p, mods, a.probabilities, v.probabilities, {**a.timings, **v.timings, **timings}

    #: The audio network never sees a window the speech gate rejected.
    keeps_unvoiced_audio = False

    def result(self, start_ns: int, end_ns: int, audio: AudioBranch, video: VideoBranch,
               critical_time: float = 0.0, speech: Optional[SpeechDecision] = None
               ) -> Optional[EmotionResult]:
        """Fuse two computed branches into the window's EmotionResult (None: neither usable).

        ``speech``: the speech gate's verdict on the window's audio, recorded in the result
        (the caller leaves the audio branch empty when it says no speech)."""
        t0 = time.perf_counter()
        p, mods, fusion_timings = self.fuse(audio, video)
        if not mods:
            return None
        timings = {**audio.timings, **video.timings, **fusion_timings}
        k = int(np.argmax(p))
        valence, arousal = valence_arousal(self.labels, p)
        return EmotionResult(
            start_ns=start_ns, end_ns=end_ns, labels=self.labels, probabilities=p,
            label=self.labels[k], confidence=float(p[k]), modalities=mods,
            audio_probabilities=audio.probabilities, video_probabilities=video.probabilities,
            face_found=video.faces.face_found, face_box=video.faces.box, valence=valence,
            arousal=arousal, inference_time=float(sum(timings.values())), timings=timings,
            bad_frames=video.bad_frames,
            critical_time=critical_time + time.perf_counter() - t0,
            speech_detected=None if speech is None else speech.speech_detected,
            speech_fraction=float("nan") if speech is None else speech.speech_fraction,
            audio_fusion_input=self.fusion_input(audio),
            video_fusion_input=self.fusion_input(video))

    @property
    def fusion_source(self) -> Optional[str]:
        """The modality networks' output the fusion network consumes (None: no fusion)."""
        return self._fusion_source

    def fusion_input(self, branch: Any) -> Optional[np.ndarray]:
        """A branch's output the fusion network consumes (None: absent, or no fusion)."""
        if self._fusion_source is None or not branch.outputs:
            return None
        return branch.outputs.get(self._fusion_source)

    def estimate(self, window: Window, decode: Callable[[Any], np.ndarray] = lambda p: p
                 ) -> Optional[EmotionResult]:
        """One whole window -> EmotionResult, or None when neither modality is usable.

        ``decode`` turns a frame payload into RGB; a ValueError leaves that frame out
        (counted in the result's ``bad_frames``).
        """
        t0 = time.perf_counter()
        greys, boxes, bad = self.extractor.prepared_frames(window, decode)
        t1 = time.perf_counter()
        video = self.video_branch(greys, boxes, bad)
        video.timings["frame_preparation"] = t1 - t0
        t2 = time.perf_counter()
        audio = self.audio_branch(window.audio, window.sample_rate)
        result = self.result(window.start_ns, window.end_ns, audio, video)
        if result is not None:
            result.critical_time = time.perf_counter() - t2
            result.inference_time = time.perf_counter() - t0
        return result

    def close(self) -> None:
        """Release the networks (GPU memory for TensorRT)."""
        for net in self.nets.values():
            net.close()
        self.nets.clear()
