"""Held-out synthetic clips for the demo and the integration tests.

    python -m training.demo_clips --out data/demo

Renders a few emotions of an actor that the synthetic.yaml model never trained on (actor 20
is in its test split), single utterances like the training clips, as mp4 (H.264 + AAC).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from avemo_ros.media import write_media

from . import synthetic

DEMO_EMOTIONS = ("happy", "sad", "angry", "calm")


def write_demo_clips(out: Path, emotions=DEMO_EMOTIONS, actor: int = 20,
                     duration_s: float = 3.6, seed: int = 7) -> list[Path]:
    """Write one clip per emotion (skipping ones that exist); returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, emotion in enumerate(emotions):
        path = out / f"{i + 1:02d}_actor{actor:02d}_{emotion}.mp4"
        if not path.is_file():
            frames, audio, rate = synthetic.render_clip(emotion, actor, duration_s=duration_s,
                                                        seed=seed, intensity=2)
            write_media(path, frames, 30.0, audio, rate)
        paths.append(path)
    return paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("data/demo"))
    ap.add_argument("--duration", type=float, default=3.6)
    args = ap.parse_args(argv)
    write_demo_clips(args.out, duration_s=args.duration)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
