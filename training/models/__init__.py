"""PyTorch networks of the seed papers (000-003) and our own variants, selectable by name.

Conventions shared by every network:

- ``forward`` returns ``(logits, features)``; ``features`` is the penultimate layer, what
  the fusion networks concatenate (seed 003).
- Class attributes ``architecture`` (the string id in the registry and the bundle
  manifest), ``role`` ("audio", "video" or "fusion") and ``input_shape`` (the default
  per-sample feature shape, as the feature extractors produce it); the constructor's
  ``input_shape`` overrides the default and the instance keeps what it was built for.
  Instances also carry ``feature_dim`` and ``example_inputs(batch)``.
- Input tensors (batch first): spectrogram ``(B, 1, F, T)``; frame features ``(B, 180, T)``;
  summary features ``(B, 65)``; grey face stacks ``(B, 1, N, H, W)``. Audio networks say
  which of the three audio feature kinds they need in ``feature_kind``; fusion networks
  say whether they take the branches' ``features`` or ``logits`` in ``fusion_inputs``
  (what ``avemo_ros.fusion_rule.fusion_source`` reads from ``forward``'s parameter names,
  the names the exported graph's inputs get).

Build one by name with :func:`build_network`; the registries are :data:`AUDIO_NETWORKS`,
:data:`VIDEO_NETWORKS` and :data:`FUSION_NETWORKS`.

Modules: ``common`` (shared checks, base class), ``audio``, ``video``, ``fusion``
(intermediate, late), ``joint`` (seed 000 end to end), ``registry`` (by name).
"""
from avemo_ros.fusion_rule import fit_late_fusion_weight

from .audio import AUDIO_NETWORKS, AudioCnn, AudioCnn1d, AudioCnnLstm, AudioCnnRnn, AudioMlp
from .common import AUDIO_FEATURE_KINDS, FRAME_FEATURES, SPECTROGRAM, SUMMARY_FEATURES
from .fusion import IntermediateFusion, LateFusion
from .joint import JointCnnRnn3dCnn, JointOutput, joint_loss
from .registry import (FUSION_NETWORKS, NETWORKS, audio_feature_kind, build_network,
                       network_class)
from .video import VIDEO_NETWORKS, Seed003Video3dCnn, Video3dCnn, VideoFrameCnn, jitter

__all__ = [
    "AUDIO_FEATURE_KINDS", "AUDIO_NETWORKS", "FRAME_FEATURES", "FUSION_NETWORKS", "NETWORKS",
    "SPECTROGRAM", "SUMMARY_FEATURES", "VIDEO_NETWORKS", "AudioCnn", "AudioCnn1d",
    "AudioCnnLstm", "AudioCnnRnn", "AudioMlp", "IntermediateFusion", "JointCnnRnn3dCnn",
    "JointOutput", "LateFusion", "Seed003Video3dCnn", "Video3dCnn", "VideoFrameCnn",
    "audio_feature_kind", "build_network", "fit_late_fusion_weight", "jitter", "joint_loss",
    "network_class",
]
