"""Offline evaluation speed: rosbag2 (MCAP, raw 640x480 rgb8 @ 30 fps + 16 kHz audio) ->
``avemo_ros.offline.evaluate_bags`` -> seconds of media per second of wall time."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace


def available() -> str | None:
    """None when the offline evaluator and the bag writer are importable, else why not."""
    try:
        from avemo_ros import bags, offline  # noqa: F401

        getattr(offline, "evaluate_bags")
        getattr(bags, "write_bag")
        getattr(bags, "timeline_from_clips")
    except Exception as e:  # ImportError / AttributeError while another worker writes them
        return f"{type(e).__name__}: {e}"
    return None


def run(bundle: Path, hop_s: float = 0.5, clips: int = 3, clip_s: float = 4.0) -> dict:
    """Write one bag of ``clips`` synthetic clips and evaluate it."""
    import numpy as np

    from avemo_ros.bags import timeline_from_clips, write_bag
    from avemo_ros.offline import evaluate_bags
    from training.synthetic import render_clip

    emotions = ("happy", "sad", "angry", "calm", "fearful")
    decoded = []
    for i in range(clips):
        frames, audio, rate = render_clip(emotions[i % len(emotions)], 20, duration_s=clip_s,
                                          seed=11 + i, size=(640, 480), intensity=2)
        decoded.append(SimpleNamespace(frames=frames, frame_times=np.arange(len(frames)) / 30.0,
                                       audio=audio, sample_rate=rate, duration=len(frames) / 30.0,
                                       path=f"clip{i}.mp4"))
    tmp = Path(tempfile.mkdtemp(prefix="avemo_bench_bag_"))
    try:
        tl = timeline_from_clips(decoded, [emotions[i % len(emotions)] for i in range(clips)],
                                 audio_rate=16000, chunk_s=0.032)
        bag = tmp / "bench_bag"
        write_bag(bag, tl.frames, tl.audio, truth=tl.truth)
        size_mb = sum(f.stat().st_size for f in bag.rglob("*") if f.is_file()) / 2**20
        res = evaluate_bags([bag], bundle, hop_s=hop_s, backend="onnxruntime")
        per_bag_wall = sum(b.wall_s for b in res.bags)
        from avemo_ros.speech_gate import SpeechGateError

        try:  # as tools.evaluate runs it by default: the node's speech gate on
            gated = evaluate_bags([bag], bundle, hop_s=hop_s, backend="onnxruntime",
                                  speech_gate={})
            gated_x = round(gated.seconds_of_media / gated.wall_s, 2)
        except SpeechGateError as e:  # no VAD model fetched
            gated_x = f"not run: {e}"
        return {
            "realtime_factor_with_speech_gate": gated_x,
            "hop_s": hop_s,
            "bag_mb": round(size_mb, 1),
            "frames": sum(b.frames for b in res.bags),
            "windows": len(res.records),
            "seconds_of_media": round(res.seconds_of_media, 2),
            "wall_s": round(res.wall_s, 2),
            "realtime_factor": round(res.seconds_of_media / res.wall_s, 2),
            "realtime_factor_without_model_load": round(res.seconds_of_media / per_bag_wall, 2),
            "accuracy": (round(float(np.mean([r.label == r.truth for r in res.records
                                              if r.truth])), 3)
                         if any(r.truth for r in res.records) else None),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
