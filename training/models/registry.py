"""Every network by role and name: the registries, :func:`build_network`, and the audio
feature kind a network needs."""
from __future__ import annotations

from torch import nn

from .audio import AUDIO_NETWORKS, AudioCnnRnn
from .common import lookup
from .fusion import IntermediateFusion, LateFusion
from .joint import JointCnnRnn3dCnn
from .video import VIDEO_NETWORKS

FUSION_NETWORKS: dict[str, type[nn.Module]] = {
    c.architecture: c for c in (IntermediateFusion, LateFusion, JointCnnRnn3dCnn)}
NETWORKS = {"audio": AUDIO_NETWORKS, "video": VIDEO_NETWORKS, "fusion": FUSION_NETWORKS}


def network_class(role: str, name: str) -> type[nn.Module]:
    """The class registered as ``name`` for ``role`` ("audio", "video" or "fusion")."""
    return lookup(NETWORKS, role, name)


def build_network(role: str, name: str, n_classes: int, input_shape=None, **kw) -> nn.Module:
    """A new network by role and name; ``input_shape`` (per sample, see each class)
    overrides the class default, ``kw`` go to the constructor."""
    cls = network_class(role, name)
    return cls(n_classes, input_shape=input_shape, **kw)


def audio_feature_kind(name: str) -> str:
    """The audio feature kind (spectrogram | frame_features | summary_features) a
    registered audio network (or the seed000_joint network's default audio trunk) needs."""
    if name == JointCnnRnn3dCnn.architecture:
        return AudioCnnRnn.feature_kind
    return network_class("audio", name).feature_kind
