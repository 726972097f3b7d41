"""Evaluate a model bundle on rosbag2 bags offline (the node's pipeline, as fast as it runs).

    python -m avemo_ros.tools.evaluate BAG... --model-dir DIR --out REPORT_DIR [--hop 0.5]

Ground truth comes from the bags (see ``avemo_ros.bags``). Each window's audio passes the
node's speech gate (``--no-speech-gate``: all audio is used). Writes report.json,
windows.csv, confusion.png and latency.png to ``--out`` and prints a summary.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from avemo_ros.bags import BagError
from avemo_ros.evaluation import write_report
from avemo_ros.manifest import BundleError
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


if __name__ == "__main__":
    raise SystemExit(main())
