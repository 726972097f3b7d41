"""Write a rosbag2 bag (camera + microphone + ground truth) from media clips laid end to end.

    python -m avemo_ros.tools.make_bag --out BAG --media a.mp4 b.mp4 [--labels happy sad]
    python -m avemo_ros.tools.make_bag --out BAG --dataset synthetic --root data/synthetic \
        --actors 19 20

Header stamps equal log times; clips follow each other ``--gap-s`` apart. A clip's label
comes from ``--labels``, else from its RAVDESS name (emotion field), else from a label
word in its name (``01_actor20_happy.mp4``); clips without one get no ground truth.
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from avemo_ros.bags import BagError, timeline_from_clips, write_bag
from avemo_ros.labels import CIRCUMPLEX, RAVDESS_CODES
from avemo_ros.media import MediaClip, MediaError, read_media

_LOG = logging.getLogger("make_bag")
_RAVDESS = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")


def _ravdess_parser():
    """The training package's RAVDESS name parser when importable (it validates every field)."""
    for module in ("training.datasets.ravdess", "training.ravdess"):
        try:
            return __import__(module, fromlist=["parse_ravdess_name"]).parse_ravdess_name
        except (ImportError, AttributeError):
            continue
    return None


def label_from_name(path: str | Path) -> Optional[str]:
    """Emotion label of a clip from its file name (RAVDESS fields or a label word), or None."""
    stem = Path(path).stem
    parse = _ravdess_parser()
    if parse is not None:
        try:
            return parse(path).label
        except ValueError:
            pass
    else:
        m = _RAVDESS.match(stem)
        if m and int(m.group(3)) in RAVDESS_CODES:
            return RAVDESS_CODES[int(m.group(3))]
    words = [w for w in re.split(r"[^a-z]+", stem.lower()) if w in CIRCUMPLEX]
    return words[-1] if words else None


def dataset_clips(root: Path, actors: Sequence[int], emotions: Sequence[str] = (),
                  max_clips: int = 0) -> list[Path]:
    """Audio-video clips (RAVDESS modality 01) of ``actors`` under ``root/Actor_XX``, by name."""
    if not root.is_dir():
        raise BagError(f"dataset root {root} is not a folder")
    out = []
    for actor in actors:
        for path in sorted((root / f"Actor_{actor:02d}").glob("*")):
            m = _RAVDESS.match(path.stem)
            if (not m or m.group(1) != "01"
                    or path.suffix.lower() not in (".mp4", ".mkv", ".avi", ".mov")):
                continue
            label = label_from_name(path)
            if emotions and label not in emotions:
                continue
            out.append(path)
    if not out:
        raise BagError(f"no audio-video RAVDESS clips of actors {list(actors)} under {root}")
    return out[:max_clips] if max_clips else out


def _resized(clip: MediaClip, width: int) -> MediaClip:
    import cv2

    if not width or not len(clip.frames) or clip.frames.shape[2] == width:
        return clip
    h, w = clip.frames.shape[1:3]
    height = max(2, int(round(h * width / w / 2)) * 2)
    frames = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA)
                       for f in clip.frames])
    return MediaClip(frames=frames, frame_times=clip.frame_times, audio=clip.audio,
                     sample_rate=clip.sample_rate, path=clip.path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True,
                    help="bag folder to create (must not exist)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--media", nargs="+", type=Path, help="media files, played in this order")
    src.add_argument("--dataset", choices=("ravdess", "synthetic"),
                     help="take clips from a RAVDESS-layout folder")
    ap.add_argument("--labels", nargs="+",
                    help="one label per --media file (default: from the file names)")
    ap.add_argument("--root", type=Path,
                    help="dataset root (default data/synthetic for synthetic)")
    ap.add_argument("--actors", nargs="+", type=int, default=[20],
                    help="dataset actors (default 20)")
    ap.add_argument("--emotions", nargs="+", default=[], help="only these dataset emotions")
    ap.add_argument("--max-clips", type=int, default=0,
                    help="at most this many dataset clips (0: all)")
    ap.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    ap.add_argument("--image", choices=("raw", "compressed"), default="raw")
    ap.add_argument("--audio-flavour", choices=("ros_drivers", "mgonzs13"), default="ros_drivers")
    ap.add_argument("--camera-topic", default="/camera/image_raw")
    ap.add_argument("--audio-topic", default="/audio")
    ap.add_argument("--fps", type=float, default=None,
                    help="camera rate (default: the clips' own frame times)")
    ap.add_argument("--width", type=int, default=0, help="scale frames to this width (0: keep)")
    ap.add_argument("--chunk-ms", type=float, default=20.0, help="audio chunk length in ms")
    ap.add_argument("--gap-s", type=float, default=0.5,
                    help="silence without messages between clips")
    ap.add_argument("--audio-rate", type=int, default=0,
                    help="resample audio to this rate (0: first clip's)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.media:
            paths = list(args.media)
            if args.labels and len(args.labels) != len(paths):
                raise BagError(f"{len(paths)} media files but {len(args.labels)} labels")
        else:
            if args.labels:
                raise BagError("--labels goes with --media; dataset labels come from the file "
                               "names")
            root = args.root or (Path("data/synthetic") if args.dataset == "synthetic" else None)
            if root is None:
                raise BagError("--dataset ravdess needs --root (the folder holding Actor_XX)")
            paths = dataset_clips(root, args.actors, args.emotions, args.max_clips)
        labels = list(args.labels) if args.labels else [label_from_name(p) for p in paths]
        clips = []
        for path in paths:
            clips.append(_resized(read_media(path), args.width))
        for path, label in zip(paths, labels):
            if label is None:
                _LOG.warning("%s: no label (not a RAVDESS name, no label word): no ground truth",
                             path)
        timeline = timeline_from_clips(clips, labels, sources=[p.name for p in paths],
                                       fps=args.fps, chunk_s=args.chunk_ms / 1000.0,
                                       gap_s=args.gap_s, audio_rate=args.audio_rate or None)
        summary = write_bag(args.out, timeline.frames, timeline.audio, truth=timeline.truth,
                            storage=args.storage, image_kind=args.image,
                            audio_flavour=args.audio_flavour,
                            camera_topic=args.camera_topic, audio_topic=args.audio_topic)
    except (BagError, MediaError) as exc:
        print(f"make_bag: {exc}", file=sys.stderr)
        return 1
    span = (timeline.end_ns - timeline.start_ns) / 1e9
    print(f"wrote {args.out} ({args.storage}): {len(clips)} clips, {span:.1f} s, "
          f"{summary['frames']} frames on {summary['image_topic']}, "
          f"{summary['audio_chunks']} audio chunks on {summary['audio_topic']} "
          f"({args.audio_flavour}), {len(timeline.truth)} ground-truth segments")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
