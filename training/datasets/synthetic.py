"""The project's synthetic set (``training/synthetic/``) as a dataset like RAVDESS.

Clips are rendered into ``root`` in the RAVDESS layout when missing, then read by the
RAVDESS parser, restricted to the actors, statements and repetitions asked for (files of
other settings in the same folder are left out).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

from .. import synthetic as generator
from .base import Clip, DatasetError, Fold, SkipLog, block_folds
from .ravdess import FOLD_SIZE, VAL_SIZE, RavdessDataset

#: Dataset modalities; audio and video use the one stream of the audio-video file.
SYNTHETIC_MODALITIES = ("audio-video", "audio", "video")


class SyntheticDataset(RavdessDataset):
    """Synthetic RAVDESS-layout clips (audio-video mp4), generated on first use.

    ``actors``: a number n (actors 1..n) or a list; ``repetitions``, ``statements``,
    ``seed``, ``duration_s``: as :func:`training.synthetic.generate_dataset`;
    ``generate``: render missing clips first (False: use the clips that are there).
    ``modality`` audio or video keeps only that stream of each clip. Folds: blocks of
    four actors (validation: two actors of the next block), or the single fold of
    explicit ``test_groups`` / ``val_groups``.
    """

    name = "synthetic"

    def __init__(self, root: Union[str, os.PathLike], *,
                 actors: Union[int, Iterable[int]] = 20, repetitions: int = 1,
                 statements: Sequence[int] = (1, 2), seed: int = 0, duration_s: float = 3.6,
                 generate: bool = True, workers: int = 2, modality: str = "audio-video",
                 test_groups: Optional[Iterable[int]] = None,
                 val_groups: Optional[Iterable[int]] = None):
        if modality not in SYNTHETIC_MODALITIES:
            raise DatasetError(f"{self.name}: modality must be one of {SYNTHETIC_MODALITIES}, "
                               f"got {modality!r}")
        if actors is None:
            raise DatasetError(f"{self.name}: actors must be a number or a list, not None")
        super().__init__(root, modality="audio-video", channel="speech", actors=actors,
                         test_groups=test_groups, val_groups=val_groups)
        self.stream = modality
        self.repetitions = int(repetitions)
        self.statements = tuple(int(s) for s in statements)
        self.seed = int(seed)
        self.duration_s = float(duration_s)
        self.generate = bool(generate)
        self.workers = int(workers)

    def clips(self) -> list[Clip]:
        if self._clips is None and self.generate:
            self.root.mkdir(parents=True, exist_ok=True)
        return super().clips()

    def _scan(self, skips: SkipLog) -> list[Clip]:
        if self.generate:
            generator.generate_dataset(
                self.root, actors=sorted(self.actors), repetitions=self.repetitions,
                statements=self.statements, seed=self.seed, workers=self.workers,
                duration_s=self.duration_s)
        clips = []
        for clip in super()._scan(skips):
            if clip.meta["repetition"] > self.repetitions \
                    or clip.meta["statement"] not in self.statements:
                continue
            if self.stream == "audio":
                clip = _replace_paths(clip, None, clip.audio_path)
            elif self.stream == "video":
                clip = _replace_paths(clip, clip.video_path, None)
            clips.append(clip)
        return clips

    def _folds(self, groups: Sequence[int]) -> list[Fold]:
        if self._explicit is not None:
            return [self._explicit]
        return block_folds(groups, FOLD_SIZE, VAL_SIZE)


def _replace_paths(clip: Clip, video: Optional[Path], audio: Optional[Path]) -> Clip:
    return Clip(id=clip.id, label=clip.label, group=clip.group, video_path=video,
                audio_path=audio, start_s=clip.start_s, end_s=clip.end_s,
                meta={**clip.meta, "modality": "video" if audio is None else "audio"})

