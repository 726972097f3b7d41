"""Per-stage cost of one window, measured in this process on one thread.

Stages: rclpy deserialization of a 640x480 bgr8 Image, Image -> grey, Haar face detection
per frame, face-stack building (20 crops), audio features of a 3 s window, each network of
the bundle in ONNX Runtime, the whole window (``EmotionEstimator.estimate``) cold (20
detections) and steady (the node's case: frames detected ahead, 2 new ones), the node's
StreamingPipeline on a stream (critical path per window, CPU share), and ONNX
Runtime vs PyTorch eager on identical weights: the networks are built fresh from
``training.models`` by the manifest's architecture names and input shapes, exported to
ONNX here, and both are timed on the same inputs.
"""
from __future__ import annotations

import logging
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from .timing import percentiles, time_call

log = logging.getLogger(__name__)


def _clip(seconds: float = 3.0, size=(640, 480)):
    from avemo_ros.audio_features import resample
    from training.synthetic import render_clip

    frames, audio, rate = render_clip("happy", 20, duration_s=seconds, seed=5, size=size,
                                      intensity=2)
    return frames, resample(audio, rate, 16000)


def input_stages(frames, audio, manifest) -> dict:
    """Costs before the networks: message, decode, detection, face stack, audio features."""
    import cv2
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import Image

    from avemo_ros.audio_features import audio_features
    from avemo_ros.face_frames import FaceDetector, build_face_stack, to_grey
    from avemo_ros import conversions as conv

    cv2.setNumThreads(1)
    msg = conv.rgb_to_image(frames[0], 0, "camera", encoding="bgr8")
    raw = serialize_message(msg)
    greys = [to_grey(f) for f in frames[: manifest.video.n_frames]]
    det = FaceDetector(manifest.video)
    boxes = [det.detect(g) for g in greys]
    it = iter(range(10**9))
    out = {
        "rclpy_image_deserialize": time_call(lambda: deserialize_message(raw, Image)),
        "image_to_grey": time_call(lambda: to_grey(conv.image_to_rgb(msg))),
        "face_detection_per_frame": time_call(lambda: det.detect(greys[next(it) % len(greys)]),
                                              repeats=len(greys)),
        "face_stack_build": time_call(lambda: build_face_stack(greys, boxes, manifest.video)),
        "audio_features": time_call(lambda: audio_features(audio[: manifest.audio.n_samples],
                                                           16000, manifest.audio)),
    }
    out["faces_found"] = f"{sum(b is not None for b in boxes)}/{len(boxes)}"
    return out


def window_stages(frames, audio, bundle: Path, threads: int = 1) -> dict:
    """Whole window through EmotionEstimator.estimate: cold cache vs the node's steady state."""
    from avemo_ros.estimator import EmotionEstimator
    from avemo_ros.window import NS, Window

    est = EmotionEstimator(bundle, "onnxruntime", threads)
    try:
        est.warmup(2)
        n = est.manifest.video.n_frames
        idx = np.linspace(0, len(frames) - 1, n).round().astype(int)
        a = audio[: est.manifest.audio.n_samples]
        counter = iter(range(1, 10**9))

        def window(new_frames: int) -> Window:
            base = next(counter) * 100 * NS  # fresh stamps: nothing cached
            stamps = [base + int(i) * NS // 30 for i in idx]
            if new_frames < n:  # the node detects frames ahead of the window end
                for s, i in zip(stamps[: n - new_frames], idx):
                    est.extractor.features(Window(s, s, None, 16000, 0.0, [frames[i]], [s]))
            return Window(base, base + 3 * NS, a, 16000, 1.0, [frames[i] for i in idx], stamps)

        def run(new_frames: int) -> dict:
            times, timing = [], {}
            for _ in range(6):
                w = window(new_frames)
                r = est.estimate(w)
                times.append(r.inference_time * 1e3)
                timing = r.timings
            return {"median_ms": round(float(np.median(times)), 2),
                    "parts_ms": {k: round(v * 1e3, 2) for k, v in timing.items()}}

        return {"window_cold_20_detections": run(n), "window_steady_2_new_frames": run(2),
                "backend": est.backend_names}
    finally:
        est.close()


def pipeline_stages(frames, audio, bundle: Path, threads: int = 1, seconds: float = 12.0,
                    hop_s: float = 0.5) -> dict:
    """The node's StreamingPipeline on a 30 fps camera + 16 kHz microphone stream (the clip
    looped), offline in this process: the critical path per window (audio branch, fusion:
    what cannot start before the window's last audio sample), the whole window's compute,
    face detection per prepared frame, and the pipeline's share of one core."""
    from avemo_ros.estimator import EmotionEstimator
    from avemo_ros.health import Health
    from avemo_ros.input_problems import ProblemLog
    from avemo_ros.pipeline import ESTIMATED, PipelineConfig, StreamingPipeline
    from avemo_ros.stream_events import CameraFrame, MicrophoneChunk

    ns, chunk = 1_000_000_000, 512
    est = EmotionEstimator(bundle, "onnxruntime", threads)
    try:
        est.warmup(2)
        pipe = StreamingPipeline(est, ProblemLog(Health(), lambda level, text: None),
                                 PipelineConfig(hop_s=hop_s, grace_s=1.0))
        events = [CameraFrame(i * ns // 30, frames[i % len(frames)])
                  for i in range(int(seconds * 30))]
        loop = np.tile(audio, int(np.ceil(seconds * 16000 / len(audio))))
        events += [MicrophoneChunk(a * ns // 16000, loop[a:a + chunk], 16000)
                   for a in range(0, int(seconds * 16000) - chunk + 1, chunk)]
        events.sort(key=lambda e: (e.stamp_ns, isinstance(e, CameraFrame)))
        outcomes = []
        t0 = time.process_time()
        for e in events:
            pipe.push(e)
            outcomes += pipe.run()
        cpu_s = time.process_time() - t0
    finally:
        est.close()
    results = [o.result for o in outcomes if o.status == ESTIMATED]
    critical = [r.critical_time * 1e3 for r in results]
    compute = [r.inference_time * 1e3 for r in results]
    return {"windows": len(results), "hop_s": hop_s, "seconds": seconds,
            "critical_path_ms": percentiles(critical, (50, 95)),
            "window_compute_ms": percentiles(compute, (50, 95)),
            "face_detection_per_frame_ms": round(
                pipe.face_detection_s * 1e3 / max(pipe.frames_prepared, 1), 2),
            "frames_prepared": pipe.frames_prepared,
            "cpu_share_of_one_core": round(cpu_s / seconds, 3),
            "face_detection_share_of_one_core": round(pipe.face_detection_s / seconds, 3)}


def _onnx_params(path: Path) -> int:
    import onnx

    return int(sum(np.prod(t.dims) for t in onnx.load(str(path)).graph.initializer))


def network_stages(bundle: Path, threads: int = 1) -> dict:
    """Each network: the bundle's ONNX in ONNX Runtime, and a fresh torch model of the same
    architecture exported here, timed in PyTorch eager and ONNX Runtime on identical weights."""
    from avemo_ros.backends import OnnxRuntimeBackend
    from avemo_ros.manifest import load_manifest

    manifest = load_manifest(bundle)
    rng = np.random.default_rng(0)
    out = {}
    try:
        import torch

        from training.models import build_network
        torch.set_num_threads(threads)
    except Exception as e:  # torch is optional for the runtime; the bench says why it is missing
        torch = None
        torch_error = f"{type(e).__name__}: {e}"
    tmp = Path(tempfile.mkdtemp(prefix="avemo_bench_"))
    for role, spec in manifest.models.items():
        feeds = {t.name: rng.standard_normal(t.shape).astype(np.float32) for t in spec.inputs}
        ort = OnnxRuntimeBackend(bundle / spec.file, threads=threads)
        row = {"architecture": spec.architecture,
               "onnxruntime_bundle": time_call(lambda: ort.run(feeds), repeats=30),
               "bundle_params": _onnx_params(bundle / spec.file)}
        ort.close()
        if torch is None:
            row["torch"] = f"not measured: {torch_error}"
            out[role] = row
            continue
        try:
            shapes = [tuple(t.shape[1:]) for t in spec.inputs]
            if role == "fusion":
                in_shape = tuple(s for s in shapes)
            else:  # drop the channel axis of (1, ...) tensors
                in_shape = shapes[0][1:] if len(shapes[0]) > 1 and shapes[0][0] == 1 else shapes[0]
            torch.manual_seed(0)
            model = build_network(role, spec.architecture, len(manifest.labels),
                                  input_shape=in_shape).eval()
            args = tuple(torch.from_numpy(feeds[t.name]) for t in spec.inputs)
            path = tmp / f"{role}.onnx"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(model, args, str(path),
                                  input_names=[t.name for t in spec.inputs],
                                  output_names=[o.name for o in spec.outputs], opset_version=17,
                                  dynamo=False)
            fresh = OnnxRuntimeBackend(path, threads=threads)
            with torch.no_grad():
                ref = model(*args)
                got = fresh.run(feeds)
                diff = max(float(np.max(np.abs(got[o.name] - r.numpy())))
                           for o, r in zip(spec.outputs, ref))
                t_torch = time_call(lambda: model(*args), repeats=30)
            t_ort = time_call(lambda: fresh.run(feeds), repeats=30)
            fresh.close()
            row.update({
                "torch_model": type(model).__name__, "fresh_params": _onnx_params(path),
                "torch_eager": t_torch, "onnxruntime_fresh": t_ort,
                "torch_over_onnxruntime": round(t_torch["median_ms"] / t_ort["median_ms"], 2),
                "max_abs_diff": diff,
            })
            if row["fresh_params"] != row["bundle_params"]:
                row["note"] = (f"the bundle's {spec.file} has {row['bundle_params']} parameters, "
                               f"training.models' {spec.architecture} {row['fresh_params']}: "
                               "the bundle was built from another definition of this "
                               "architecture name")
        except Exception as e:  # report, do not abort the whole benchmark
            log.warning("%s: torch comparison failed: %s", role, e)
            row["torch"] = f"not measured: {type(e).__name__}: {e}"
        out[role] = row
    return out


def run(bundle: Path, threads: int = 1) -> dict:
    """All per-stage figures."""
    from avemo_ros.manifest import load_manifest

    manifest = load_manifest(bundle)
    frames, audio = _clip()
    return {"threads": threads, "inputs": input_stages(frames, audio, manifest),
            "window": window_stages(frames, audio, bundle, threads),
            "pipeline": pipeline_stages(frames, audio, bundle, threads),
            "networks": network_stages(bundle, threads)}
