"""Model bundle: a directory of ONNX files (and TensorRT engines) plus ``manifest.json``.

The runtime refuses a bundle whose manifest does not match its files (checksums), its
own preprocessing (unknown or missing parameters, input shapes that the preprocessing
would not produce) or itself (format version), naming the mismatch.

A bundle holds one of :data:`ROLE_SETS`: audio, video and fusion networks, or a single
modality's network (e.g. the FER2013 face network: video only). The preprocessing of a
modality without a network may be left out of the manifest; the runtime then uses that
config's defaults with the other modality's window length (the window grid).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .audio_features import AudioFeatureConfig
from .face_frames import VideoFeatureConfig
from . import fusion_rule
from .fusion_rule import FEATURES, FUSION_INPUTS, LOGITS  # noqa: F401  (re-exported)

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1
#: The networks a bundle holds, by role.
ROLES = ("audio", "video", "fusion")
#: The sets of networks a bundle may hold: all three, or one modality alone.
ROLE_SETS = (frozenset(ROLES), frozenset({"video"}), frozenset({"audio"}))
#: Output names every network has (logits, and the penultimate features fusion may use) and
#: the fusion input pairs: defined once, in :mod:`avemo_ros.fusion_rule`.
#: Manifest preprocessing fields added after format 1, with the value older bundles meant.
_LATER_FIELDS = {"audio": {"kind": "spectrogram", "n_mels": 128, "n_mfcc": 40},
                 "video": {"min_face_camera_px": 0, "normalisation": "window_standardise"}}


class BundleError(ValueError):
    """A model bundle that cannot be used, with the reason."""


@dataclass
class TensorSpec:
    name: str
    shape: list[int]
    dtype: str = "float32"

    @property
    def one_row(self) -> tuple[int, ...]:
        """The shape of one batch-1 input: a dynamic dimension (not a positive int) as 1."""
        return tuple(d if isinstance(d, int) and d > 0 else 1 for d in self.shape)


@dataclass
class ModelSpec:
    """One network of the bundle."""

    file: str
    architecture: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    sha256: str = ""
    engine: Optional[dict] = None  # TensorRT: {file, sha256, tensorrt_version, gpu, precision}

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        return cls(file=d["file"], architecture=d["architecture"],
                   inputs=[TensorSpec(**t) for t in d["inputs"]],
                   outputs=[TensorSpec(**t) for t in d["outputs"]],
                   sha256=d.get("sha256", ""), engine=d.get("engine"))

    def to_dict(self) -> dict:
        d = {"file": self.file, "architecture": self.architecture,
             "inputs": [vars(t) for t in self.inputs], "outputs": [vars(t) for t in self.outputs],
             "sha256": self.sha256}
        if self.engine:
            d["engine"] = self.engine
        return d


@dataclass
class Manifest:
    """Everything the runtime needs to know about a bundle."""

    name: str
    version: str
    labels: list[str]
    audio: AudioFeatureConfig
    video: VideoFeatureConfig
    models: dict[str, ModelSpec]
    training: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def roles(self) -> frozenset:
        """The networks the bundle holds."""
        return frozenset(self.models)

    @property
    def model_id(self) -> str:
        """name@version-<first 8 hex of the combined model checksums>."""
        h = hashlib.sha256("".join(self.models[r].sha256 for r in sorted(self.models)).encode())
        return f"{self.name}@{self.version}-{h.hexdigest()[:8]}"

    def to_dict(self) -> dict:
        """JSON-ready; the preprocessing of a modality without a network is left out."""
        pre = {k: cfg.to_dict() for k, cfg in (("audio", self.audio), ("video", self.video))
               if k in self.models or not self.models}
        return {"format_version": self.format_version, "name": self.name, "version": self.version,
                "labels": list(self.labels), "preprocessing": pre,
                "models": {k: v.to_dict() for k, v in self.models.items()},
                "training": self.training}

    @classmethod
    def from_dict(cls, d: dict) -> "Manifest":
        try:
            if d.get("format_version") != FORMAT_VERSION:
                raise BundleError(f"manifest format_version {d.get('format_version')!r} is not "
                                  f"the supported {FORMAT_VERSION}")
            pre = d["preprocessing"]
            models = {k: ModelSpec.from_dict(v) for k, v in d["models"].items()}
            configs = {}
            for what, cls_ in (("audio", AudioFeatureConfig), ("video", VideoFeatureConfig)):
                if what in pre or what in models:
                    configs[what] = _config(cls_, pre[what], what)
            window = {"window_s": next(iter(configs.values())).window_s} if configs else {}
            audio = configs.get("audio") or AudioFeatureConfig(**window)
            video = configs.get("video") or VideoFeatureConfig(**window)
            return cls(name=d["name"], version=d["version"], labels=list(d["labels"]),
                       audio=audio, video=video, models=models, training=d.get("training", {}))
        except KeyError as e:
            raise BundleError(f"manifest is missing the field {e}") from None

    def save(self, bundle_dir: Path) -> Path:
        path = Path(bundle_dir) / MANIFEST_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path


def _config(cls, d: dict, what: str):
    d = {**_LATER_FIELDS[what], **d}
    known = set(cls.__dataclass_fields__)
    unknown, missing = set(d) - known, known - set(d)
    if unknown or missing:
        raise BundleError(f"{what} preprocessing in the manifest does not match this runtime: "
                          f"unknown {sorted(unknown)}, missing {sorted(missing)}")
    try:
        return cls.from_dict(d)
    except (TypeError, ValueError) as e:
        raise BundleError(f"{what} preprocessing in the manifest is invalid: {e}") from None


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def expected_input_shapes(m: Manifest) -> dict[str, list[int]]:
    """The feature shape each modality network of the bundle must take, given the
    preprocessing."""
    shapes = {"audio": list(m.audio.shape), "video": list(m.video.shape)}
    return {role: shape for role, shape in shapes.items() if role in m.models}


def _holds(net_shape: list[int], feature_shape: list[int]) -> bool:
    """A batch-1 network input holds a feature array: same trailing dims, leading dims 1."""
    lead = len(net_shape) - len(feature_shape)
    return lead >= 1 and all(d == 1 for d in net_shape[:lead]) and \
        list(net_shape[lead:]) == list(feature_shape)


def fusion_source(spec: ModelSpec) -> str:
    """Which modality-network output (LOGITS or FEATURES) a fusion network consumes."""
    try:
        return fusion_rule.fusion_source(spec)
    except fusion_rule.FusionRuleError as e:
        raise BundleError(str(e)) from e


def check_roles(models) -> frozenset:
    """The bundle's set of networks, when it is one of :data:`ROLE_SETS`; BundleError else."""
    roles = frozenset(models)
    if roles not in ROLE_SETS:
        unknown = sorted(roles - set(ROLES))
        raise BundleError(
            f"manifest holds the networks {sorted(roles)}"
            + (f" ({unknown} are no roles of {list(ROLES)})" if unknown else "")
            + ": a bundle holds audio, video and fusion networks, or only a video or only an "
            "audio network")
    return roles


def load_manifest(bundle_dir: Path | str, *, verify_files: bool = True) -> Manifest:
    """Read and check a bundle; raises BundleError naming the first mismatch."""
    bundle_dir = Path(bundle_dir)
    path = bundle_dir / MANIFEST_NAME
    if not path.is_file():
        raise BundleError(f"no {MANIFEST_NAME} in model bundle {bundle_dir}")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BundleError(f"unreadable manifest {path}: {e}") from None
    m = Manifest.from_dict(data)
    if not m.labels:
        raise BundleError("manifest has an empty label set")
    check_roles(m.models)
    for role, shape in expected_input_shapes(m).items():
        got = m.models[role].inputs[0].shape
        if not _holds(list(got), shape):
            raise BundleError(f"{role} network input shape {got} does not match the "
                              f"preprocessing output {shape}")
    if "fusion" in m.models:
        fusion_source(m.models["fusion"])
    for role, spec in m.models.items():
        names = [t.name for t in spec.outputs]
        if names[:2] != [LOGITS, FEATURES]:
            raise BundleError(f"{role} network outputs {names} are not [{LOGITS!r}, {FEATURES!r}]")
    for role, spec in m.models.items():
        logits = spec.outputs[0].shape
        if logits[-1] != len(m.labels):
            raise BundleError(f"{role} network has {logits[-1]} outputs for "
                              f"{len(m.labels)} labels")
        if verify_files:
            f = bundle_dir / spec.file
            if not f.is_file():
                raise BundleError(f"{role} model file {f} is missing")
            digest = sha256_file(f)
            if digest != spec.sha256:
                raise BundleError(f"{role} model file {f.name} checksum {digest[:12]} does not "
                                  f"match the manifest's {spec.sha256[:12]}: file changed or "
                                  "corrupt")
    return m
