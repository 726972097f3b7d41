"""The dataset on disk: every clip of a set of actors in RAVDESS naming, rendered in a
process pool; the command line."""
from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

import cv2
from tqdm import tqdm

from avemo_ros.media import write_media

from .clips import render_clip
from .speech import _STATEMENTS
from .styles import LABELS, _check_emotion

_LOG = logging.getLogger("training.synthetic")


def ravdess_name(emotion: str, intensity: int, statement: int, repetition: int, actor: int) -> str:
    """RAVDESS audio-video speech file name, e.g. ``01-01-03-02-01-01-12.mp4``."""
    code = LABELS.index(_check_emotion(emotion)) + 1
    return f"01-01-{code:02d}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}.mp4"


@dataclass(frozen=True)
class _Job:
    path: str
    emotion: str
    actor: int
    intensity: int
    statement: int
    repetition: int
    seed: int
    duration_s: float


def _dataset_jobs(root: Path, actors: Iterable[int], repetitions: int, statements: Iterable[int],
                  seed: int, duration_s: float) -> list[_Job]:
    jobs = []
    for actor in actors:
        for emotion in LABELS:
            intensities = (1,) if emotion == "neutral" else (1, 2)
            for intensity in intensities:
                for statement in statements:
                    for rep in range(1, repetitions + 1):
                        name = ravdess_name(emotion, intensity, statement, rep, actor)
                        path = root / f"Actor_{actor:02d}" / name
                        jobs.append(_Job(str(path), emotion, int(actor), intensity, int(statement),
                                         rep, seed, duration_s))
    return jobs


def _run_job(job: _Job) -> str:
    frames, audio, sr = render_clip(job.emotion, job.actor, seed=job.seed, intensity=job.intensity,
                                    statement=job.statement, repetition=job.repetition,
                                    duration_s=job.duration_s)
    path = Path(job.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    write_media(tmp, frames, 30.0, audio, sr, threads=1)
    os.replace(tmp, path)
    return job.path


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one clip per process; OpenCV's own threads would oversubscribe


def generate_dataset(root: "str | os.PathLike", *, actors: Iterable[int] = range(1, 11),
                     repetitions: int = 2, statements: Sequence[int] = (1, 2), seed: int = 0,
                     workers: int = 2, progress: bool = True,
                     duration_s: float = 3.6) -> list[Path]:
    """Write the synthetic set under ``root/Actor_XX/`` in RAVDESS naming; return all paths.

    Existing non-empty files are kept (idempotent). Neutral has intensity 01 only, the
    other emotions 01 and 02, so each actor has ``15 * len(statements) * repetitions``
    clips (600 for the defaults). ``workers`` > 1 renders in a process pool.
    """
    if repetitions < 1:
        raise ValueError(f"repetitions must be >= 1, got {repetitions}")
    for s in statements:
        if s not in _STATEMENTS:
            raise ValueError(f"statements must be 1 and/or 2, got {s}")
    root = Path(root)
    jobs = _dataset_jobs(root, list(actors), repetitions, list(statements), seed, duration_s)
    todo = [j for j in jobs if not (os.path.isfile(j.path) and os.path.getsize(j.path) > 0)]
    _LOG.info("%d clips under %s, %d to render", len(jobs), root, len(todo))
    bar = tqdm(total=len(todo), unit="clip", disable=not progress or not todo)
    try:
        if workers <= 1 or len(todo) <= 1:
            for job in todo:
                _run_job(job)
                bar.update(1)
        else:
            # forkserver: a fork of a process with threads (rclpy, torch, a test runner)
            # can deadlock in the child; the server process has none.
            with mp.get_context("forkserver").Pool(workers, initializer=_init_worker) as pool:
                for _ in pool.imap_unordered(_run_job, todo, chunksize=2):
                    bar.update(1)
    finally:
        bar.close()
    return sorted(Path(j.path) for j in jobs)


def _parse_actors(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = (int(v) for v in part.split("-", 1))
            out.extend(range(lo, hi + 1))
        else:
            out.append(int(part))
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"bad actor list {text!r} (use e.g. 1-10 or 1,3,5)")
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m training.synthetic",
        description="Write the synthetic RAVDESS-style emotion dataset.")
    parser.add_argument("--root", type=Path, default=Path("data/synthetic"),
                        help="output directory")
    parser.add_argument("--actors", type=_parse_actors, default=list(range(1, 11)),
                        help="e.g. 1-10 or 1,2,5")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repetitions", type=int, default=2)
    parser.add_argument("--statements", type=int, nargs="+", default=[1, 2], choices=[1, 2])
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    start = time.monotonic()
    paths = generate_dataset(args.root, actors=args.actors, repetitions=args.repetitions,
                             statements=tuple(args.statements), seed=args.seed,
                             workers=args.workers, progress=not args.no_progress)
    _LOG.info("%d clips ready under %s in %.1f s", len(paths), args.root, time.monotonic() - start)
    return 0
