"""Export trained networks to ONNX and write the model bundle (ONNX files + manifest)."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
import torch

from avemo_ros.audio_features import AudioFeatureConfig
from avemo_ros.backends import OnnxRuntimeBackend
from avemo_ros.estimator import AUDIO_INPUTS, VIDEO_INPUT
from avemo_ros.face_frames import VideoFeatureConfig
from avemo_ros.fusion_rule import FusionRuleError, fusion_source
from avemo_ros.fusion_rule import fusion_input_names as _input_names
from avemo_ros.manifest import FEATURES, LOGITS, Manifest, ModelSpec, TensorSpec, sha256_file

log = logging.getLogger(__name__)
OPSET = 17


class ExportError(RuntimeError):
    """ONNX export produced a model that fails its checks."""


def export_onnx(model: torch.nn.Module, example: Sequence[torch.Tensor], input_names: list[str],
                output_names: list[str], path: Path, atol: float = 1e-4) -> list[TensorSpec]:
    """Static-shape ONNX export with named I/O; checked, and compared to PyTorch in ORT.

    Returns the output tensor specs. Raises ExportError when the ONNX Runtime outputs
    differ from PyTorch's by more than ``atol`` (max abs).
    """
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, tuple(example), str(path), input_names=input_names,
                          output_names=output_names, opset_version=OPSET, dynamo=False)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    with torch.no_grad():
        ref = [t.numpy() for t in model(*example)]
    got = OnnxRuntimeBackend(path, use_cuda=False).run(
        {n: t.numpy() for n, t in zip(input_names, example)})
    for name, r in zip(output_names, ref):
        err = float(np.max(np.abs(got[name] - r)))
        if err > atol:
            raise ExportError(f"{path.name}: ONNX Runtime output {name} differs from PyTorch "
                              f"by {err:.2e}")
        log.info("%s %s: ORT vs PyTorch max abs diff %.2e", path.name, name, err)
    return [TensorSpec(n, list(r.shape), "float32") for n, r in zip(output_names, ref)]


def network_input_shape(role: str, feature_shape: Sequence[int],
                        kind: str = "spectrogram") -> list[int]:
    """Batch-1 input shape of a modality network for a feature array.

    Spectrograms and face stacks get a channel axis (2D / 3D convolutions); frame and
    summary audio features are fed as they are (1D convolution over time, MLP).
    """
    if role == "video" or kind == "spectrogram":
        return [1, 1, *feature_shape]
    return [1, *feature_shape]


def fusion_input_names(fusion_model: torch.nn.Module) -> tuple[str, str]:
    """The fusion network's input names, from its forward() parameters (a pair of
    ``avemo_ros.fusion_rule.FUSION_INPUTS``)."""
    try:
        fusion_source(fusion_model)
    except FusionRuleError as e:
        raise ExportError(f"{type(fusion_model).__name__}.forward: {e}") from None
    return _input_names(fusion_model)


def write_bundle(out_dir: Path, *, audio_model: torch.nn.Module, video_model: torch.nn.Module,
                 fusion_model: torch.nn.Module, labels: list[str], audio_cfg: AudioFeatureConfig,
                 video_cfg: VideoFeatureConfig, name: str, version: str,
                 training: dict) -> Manifest:
    """Export the three networks into ``out_dir`` and write its manifest.

    The fusion network consumes the modality networks' features or logits, as its
    forward() parameter names say (``avemo_ros.fusion_rule.fusion_source``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    audio_in = torch.randn(*network_input_shape("audio", audio_cfg.shape, audio_cfg.kind),
                           generator=gen)
    faces_in = torch.randn(*network_input_shape("video", video_cfg.shape), generator=gen)
    fusion_names = fusion_input_names(fusion_model)
    source = 0 if fusion_source(fusion_names) == LOGITS else 1
    with torch.no_grad():
        fa = audio_model.eval()(audio_in)[source]
        fv = video_model.eval()(faces_in)[source]
    models = {}
    for role, model, example, in_names in (
            ("audio", audio_model, [audio_in], [AUDIO_INPUTS[audio_cfg.kind]]),
            ("video", video_model, [faces_in], [VIDEO_INPUT]),
            ("fusion", fusion_model, [fa, fv], list(fusion_names))):
        path = out_dir / f"{role}.onnx"
        outputs = export_onnx(model, example, in_names, [LOGITS, FEATURES], path)
        models[role] = ModelSpec(
            file=path.name, architecture=getattr(model, "architecture", type(model).__name__),
            inputs=[TensorSpec(n, list(t.shape), "float32") for n, t in zip(in_names, example)],
            outputs=outputs, sha256=sha256_file(path))
    manifest = Manifest(name=name, version=version, labels=list(labels), audio=audio_cfg,
                        video=video_cfg, models=models, training=training)
    manifest.save(out_dir)
    log.info("bundle %s written to %s", manifest.model_id, out_dir)
    return manifest
