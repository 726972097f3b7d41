"""Evaluate a model bundle on rosbag2 bags offline (the node's pipeline, as fast as it runs).

    python -m avemo_ros.tools.evaluate BAG... --model-dir DIR --out REPORT_DIR [--hop 0.5]

Ground truth comes from the bags (see ``avemo_ros.bags``). Each window's audio passes the
node's speech gate (``--no-speech-gate``: all audio is used). Writes report.json,
windows.csv, confusion.png and latency.png to ``--out`` and prints a summary; with ground
truth, also worst_windows.md: the ``--worst`` windows with the lowest probability on their
true class, each with an annotated still (``worst/*.png``). ``--video OUT.mp4`` writes the
bag's camera annotated with the estimates (several bags: one OUT_<bag>.mp4 each).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from avemo_ros.bag_video import render_bag, true_class_probability, worst_windows
from avemo_ros.bags import BagError
from avemo_ros.evaluation import write_report
from avemo_ros.manifest import BundleError
from avemo_ros.media import MediaError
from avemo_ros.face_detectors import DEFAULT_DETECTOR, DETECTORS, DetectorError
from avemo_ros.face_frames import CascadeNotFoundError
from avemo_ros.offline import LegacyAudioFormat, evaluate_bags
from avemo_ros.speech_gate import SpeechGateError


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bags", nargs="+", type=Path, help="rosbag2 folders (or .mcap / .db3 files)")
    ap.add_argument("--model-dir", type=Path, required=True,
                    help="model bundle (manifest.json + networks)")
    ap.add_argument("--out", type=Path, required=True, help="report folder")
    ap.add_argument("--hop", type=float, default=0.5,
                    help="seconds between window ends (default 0.5)")
    ap.add_argument("--grace", type=float, default=1.0,
                    help="wait this far past a window for a late modality")
    ap.add_argument("--backend", choices=("auto", "onnxruntime", "tensorrt"), default="auto")
    ap.add_argument("--threads", type=int, default=0,
                    help="ONNX Runtime threads per network (0: default)")
    ap.add_argument("--camera-topic", help="default: the bag's Image / CompressedImage topic")
    ap.add_argument("--audio-topic", help="default: the bag's audio_common_msgs topic")
    ap.add_argument("--audio-sample-format", default="S16LE",
                    help="legacy audio without AudioInfo in the bag")
    ap.add_argument("--audio-channels", type=int, default=1,
                    help="legacy audio without AudioInfo in the bag")
    ap.add_argument("--audio-sample-rate", type=int, default=16000,
                    help="legacy audio without AudioInfo in the bag")
    ap.add_argument("--no-speech-gate", action="store_true",
                    help="use all audio (the node's speech_gate:=false)")
    ap.add_argument("--speech-threshold", type=float, default=-1.0,
                    help="the node's speech_threshold (-1: the bundle's)")
    ap.add_argument("--min-speech-fraction", type=float, default=-1.0,
                    help="the node's min_speech_fraction (-1: the bundle's)")
    ap.add_argument("--vad-model", help="Silero VAD ONNX file (default: the fetched one)")
    ap.add_argument("--max-faces", type=int, default=3,
                    help="tracked faces estimated per window (the node's max_faces)")
    ap.add_argument("--face-detector", default=DEFAULT_DETECTOR, choices=sorted(DETECTORS),
                    help="the face tracker's detector (the node's face_detector)")
    ap.add_argument("--face-detector-model", help="its model file, for yunet")
    ap.add_argument("--no-face-tracking", action="store_true",
                    help="detect on every whole frame, largest face only (as training)")
    ap.add_argument("--video", type=Path, help="also write the annotated camera video here")
    ap.add_argument("--worst", type=int, default=5,
                    help="stills of this many worst windows in the report (0: none)")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every bag")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.hop > 0:
        print("evaluate: --hop must be > 0", file=sys.stderr)
        return 2
    gate = None if args.no_speech_gate else {
        "threshold": args.speech_threshold, "min_speech_fraction": args.min_speech_fraction,
        "model_path": args.vad_model}
    if args.max_faces < 1:
        print("evaluate: --max-faces must be >= 1", file=sys.stderr)
        return 2
    faces = {"face_tracking": not args.no_face_tracking, "max_faces": args.max_faces,
             "face_detector": args.face_detector,
             "face_detector_model": args.face_detector_model}
    legacy = LegacyAudioFormat(args.audio_sample_format, args.audio_channels,
                               args.audio_sample_rate)
    try:
        result = evaluate_bags(args.bags, args.model_dir, hop_s=args.hop, backend=args.backend,
                               threads=args.threads, grace_s=args.grace,
                               camera_topic=args.camera_topic, audio_topic=args.audio_topic,
                               legacy_format=legacy, speech_gate=gate, faces=faces)
    except (BagError, BundleError, FileNotFoundError, SpeechGateError, ValueError,
            DetectorError, CascadeNotFoundError) as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 1
    extra = {
        "bags": [str(b) for b in args.bags], "model_dir": str(args.model_dir),
        "model_id": result.model_id, "hop_s": args.hop, "grace_s": args.grace,
        "backend": args.backend, "threads": args.threads, "speech_gate": gate, "faces": faces,
        "seconds_of_media": result.seconds_of_media, "wall_s": result.wall_s,
        "realtime_factor": result.realtime_factor,
        "latency_meaning": "compute time per window (offline)",
        "per_bag": [{"path": s.path, "camera_topic": s.camera_topic,
                     "audio_topic": s.audio_topic, "frames": s.frames,
                     "audio_chunks": s.audio_chunks, "windows": s.windows,
                     "estimates": s.estimates, "truth_segments": s.truth_segments,
                     "windows_without_speech": s.windows_without_speech,
                     "seconds_of_media": s.seconds_of_media, "wall_s": s.wall_s,
                     "problems": s.problems}
                    for s in result.bags],
    }
    worst = worst_windows(result.records, result.labels, args.worst)
    extra["worst_windows"] = [
        {"source": r.source, "start_s": r.start_ns / 1e9, "end_s": r.end_ns / 1e9,
         "truth": r.truth, "label": r.label,
         "true_class_probability": true_class_probability(r, result.labels),
         "still": f"worst/{i + 1:02d}_{r.source}_{r.end_ns / 1e9:.2f}s.png"}
        for i, r in enumerate(worst)]
    try:
        _render(args, result, worst, extra["worst_windows"])
    except (BagError, OSError, MediaError, ValueError) as exc:
        print(f"evaluate: video / stills: {exc}", file=sys.stderr)
        return 1
    report = write_report(args.out, result.records, result.labels, extra=extra)
    lat = report["latency_s"]
    p50 = "n/a" if lat["p50"] is None else f"{lat['p50'] * 1e3:.0f} ms"
    print(f"{len(args.bags)} bag(s), {result.seconds_of_media:.1f} s of media in "
          f"{result.wall_s:.1f} s ({result.realtime_factor:.1f}x real time); "
          f"model {result.model_id}")
    print(f"windows {report['windows']} (scored {report['windows_scored']}, without estimate "
          f"{report['windows_without_estimate']}, without truth "
          f"{report['windows_without_truth']}); compute per window p50 {p50}")
    print(f"{report['summary']} -> {args.out}/report.json")
    return 0


def _render(args: argparse.Namespace, result, worst: list, worst_info: list) -> None:
    """The annotated video(s) and the worst windows' stills + worst_windows.md."""
    several = len(result.bags) > 1
    for stats in result.bags:
        source = Path(stats.path).name
        stills = {r.end_ns: args.out / w["still"]
                  for r, w in zip(worst, worst_info) if r.source == source}
        video = None
        if args.video is not None:
            video = (args.video.with_name(f"{args.video.stem}_{source}{args.video.suffix}")
                     if several else args.video)
        if video is None and not stills:
            continue
        done = render_bag(stats.path, stats.results, video=video, stills=stills,
                          camera_topic=stats.camera_topic, labels=result.labels)
        if video is not None and done["video"]:
            print(f"annotated video: {video} ({done['frames']} frames)")
    for w in worst_info:  # a bag without a camera has no stills
        if not (args.out / w["still"]).is_file():
            w["still"] = None
    if worst_info:
        rows = ["# Worst windows (lowest probability on the true class)", "",
                "| # | bag | window (s) | truth | estimate | p(truth) | still |",
                "|---|---|---|---|---|---|---|"]
        for i, w in enumerate(worst_info):
            p = w["true_class_probability"]
            rows.append(f"| {i + 1} | {w['source']} | {w['start_s']:.2f}-{w['end_s']:.2f} | "
                        f"{w['truth']} | {w['label']} | {p:.2f} | "
                        + (f"[{Path(w['still']).name}]({w['still']}) |" if w["still"]
                           else "no camera |"))
        (args.out / "worst_windows.md").write_text("\n".join(rows) + "\n")
        print(f"worst windows: {args.out}/worst_windows.md")


if __name__ == "__main__":
    raise SystemExit(main())
