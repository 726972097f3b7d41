"""The fusion rule, decided in one place for the estimator and for training's evaluation.

- **Which fusion** a bundle holds is read from its fusion network's two input names
  (``FUSION_INPUTS``): ``audio_features``/``video_features`` is intermediate fusion (the
  modality networks' penultimate FEATURES: seed 003, seed 000), ``audio_logits`` /
  ``video_logits`` late fusion (their LOGITS: seed 002).
- **How a window's probabilities combine**: both modalities present, the fusion
  network's output; one present, that modality's own probabilities; neither, no estimate.
- **The late-fusion rule**: ``p = w * p_audio + (1 - w) * p_video``, the audio weight ``w``
  fitted on validation windows (:func:`fit_late_fusion_weight`).

ROS-free, NumPy only.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Optional

import numpy as np

#: Modality bitmask (EmotionEstimate.modalities).
AUDIO, VIDEO = 1, 2
#: Modality-network outputs a fusion network may consume.
LOGITS, FEATURES = "logits", "features"
#: Fusion input names -> which modality-network output the fusion network consumes.
FUSION_INPUTS = {
    ("audio_features", "video_features"): FEATURES,
    ("audio_logits", "video_logits"): LOGITS,
}
#: Kind of fusion by the output it consumes.
FUSION_KINDS = {FEATURES: "intermediate", LOGITS: "late"}


class FusionRuleError(ValueError):
    """A fusion network whose input names are none of the known pairs."""


def fusion_input_names(fusion: Any) -> tuple[str, ...]:
    """The fusion network's input names, from whatever describes it.

    ``fusion``: a Manifest (``.models["fusion"]``), a ModelSpec (``.inputs[*].name``), a
    manifest dict or its ``models.fusion`` entry, a network class or instance (the first
    two parameters of ``forward``; a joint network's exported ``fusion_net`` head), or a
    sequence of names.
    """
    fusion = getattr(fusion, "fusion_net", fusion)
    if hasattr(fusion, "models"):  # Manifest
        fusion = fusion.models["fusion"]
    if isinstance(fusion, dict):
        fusion = fusion.get("models", {}).get("fusion", fusion)
        return tuple(t["name"] for t in fusion["inputs"])
    if hasattr(fusion, "inputs"):  # ModelSpec
        return tuple(t.name for t in fusion.inputs)
    if hasattr(fusion, "forward"):  # a network (class or instance)
        params = list(inspect.signature(fusion.forward).parameters)
        if inspect.isclass(fusion):
            params = params[1:]  # self
        return tuple(params[:2])
    return tuple(str(n) for n in fusion)


def fusion_source(fusion: Any) -> str:
    """FEATURES (intermediate fusion) or LOGITS (late fusion): what ``fusion`` consumes.

    ``fusion`` as :func:`fusion_input_names` takes it; raises FusionRuleError for an
    unknown pair of input names.
    """
    names = fusion_input_names(fusion)
    if names not in FUSION_INPUTS:
        raise FusionRuleError(f"fusion network inputs {list(names)} are none of the known pairs "
                              f"{[list(k) for k in FUSION_INPUTS]}")
    return FUSION_INPUTS[names]


def fusion_kind(fusion: Any) -> str:
    """"intermediate" or "late" (see :func:`fusion_source`)."""
    return FUSION_KINDS[fusion_source(fusion)]


def modalities(audio: bool, video: bool) -> int:
    """The modality bitmask of a window: AUDIO | VIDEO for the modalities present."""
    return (AUDIO if audio else 0) | (VIDEO if video else 0)


def softmax(z: np.ndarray) -> np.ndarray:
    """Probabilities of one window's logits (computed in float64, returned as float32)."""
    z = np.asarray(z, dtype=np.float64).reshape(-1)
    e = np.exp(z - z.max())
    return (e / e.sum()).astype(np.float32)


def combine(p_audio: Optional[np.ndarray], p_video: Optional[np.ndarray],
            fuse: Callable[[], np.ndarray]) -> tuple[np.ndarray, int]:
    """One window's fused probabilities and modality bitmask.

    ``p_audio`` / ``p_video``: that modality's probabilities, None where it is missing.
    ``fuse()`` (called only when both are present) returns the fusion network's
    probabilities. Neither present: an empty array and 0.
    """
    mods = modalities(p_audio is not None, p_video is not None)
    if mods == AUDIO | VIDEO:
        return np.asarray(fuse()), mods
    if mods:
        return (p_audio if p_audio is not None else p_video), mods
    return np.zeros(0, np.float32), mods


def combine_batch(p_audio: np.ndarray, p_video: np.ndarray, p_fused: np.ndarray,
                  has_audio: np.ndarray, has_video: np.ndarray) -> np.ndarray:
    """:func:`combine` over N windows at once: (N, C) probabilities, (N,) presence masks.

    Rows with neither modality are zeros (no estimate).
    """
    a = np.asarray(has_audio, bool)[:, None]
    v = np.asarray(has_video, bool)[:, None]
    p = np.where(a & v, p_fused, np.where(a, p_audio, p_video))
    return np.where(a | v, p, np.zeros_like(p))


def late_fusion(p_audio: np.ndarray, p_video: np.ndarray, weight: float) -> np.ndarray:
    """Late fusion (seed 002): ``weight * p_audio + (1 - weight) * p_video``, weight in [0, 1]."""
    if not 0.0 <= float(weight) <= 1.0:
        raise FusionRuleError(f"late fusion weight must be in [0, 1], got {weight}")
    return weight * np.asarray(p_audio) + (1 - weight) * np.asarray(p_video)


def fit_late_fusion_weight(p_audio: np.ndarray, p_video: np.ndarray, y: np.ndarray,
                           grid: int = 101) -> float:
    """Audio weight ``w`` on ``grid`` points of [0, 1] that maximises the accuracy of
    ``argmax(late_fusion(p_audio, p_video, w))`` on (validation) labels ``y``.

    Ties go to the ``w`` closest to 0.5.
    """
    pa, pv = np.asarray(p_audio, dtype=np.float64), np.asarray(p_video, dtype=np.float64)
    y = np.asarray(y)
    if pa.ndim != 2 or pa.shape != pv.shape or y.shape != (len(pa),) or len(pa) == 0:
        raise ValueError(f"fit_late_fusion_weight: need p_audio and p_video of one shape (N, C) "
                         f"and y of shape (N,), N > 0; got {pa.shape}, {pv.shape}, {y.shape}")
    if grid < 2:
        raise ValueError(f"fit_late_fusion_weight: grid must have at least 2 points, got {grid}")
    ws = np.linspace(0.0, 1.0, grid)
    acc = np.array([(late_fusion(pa, pv, w).argmax(1) == y).mean() for w in ws])
    best = np.flatnonzero(acc == acc.max())
    return float(ws[best[np.argmin(np.abs(ws[best] - 0.5))]])
