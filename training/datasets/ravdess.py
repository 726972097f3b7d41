"""RAVDESS: file naming and the dataset of one modality (or paired video + audio files).

File names have seven two-digit fields, modality-channel-emotion-intensity-statement-
repetition-actor (e.g. ``01-01-03-02-01-02-12.mp4``): modality 01 audio-video (mp4),
02 video-only (mp4, no sound), 03 audio-only (wav); channel 01 speech, 02 song; eight
emotions; 24 actors (odd numbers male, even female) in ``Actor_XX`` folders. The
folders may sit directly under the root or one level down (as the per-actor zip files
unpack, e.g. ``Video_Speech_Actor_01/Actor_01``).
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

from avemo_ros.labels import RAVDESS_CODES, RAVDESS_LABELS

from .base import Clip, Dataset, DatasetError, Fold, SkipLog, block_folds

MODALITIES = {1: "audio-video", 2: "video-only", 3: "audio-only"}
CHANNELS = {1: "speech", 2: "song"}
_EXTENSIONS = {1: ".mp4", 2: ".mp4", 3: ".wav"}

#: Dataset modalities: which files make a clip.
#: ``paired`` joins the 02 video-only and 03 audio-only files of one take (seed 003).
DATASET_MODALITIES = ("audio-video", "video", "audio", "paired")
_FILE_MODALITY = {"audio-video": 1, "video": 2, "audio": 3}

#: Actors per test fold, and how many actors of the next fold validate.
FOLD_SIZE, VAL_SIZE = 4, 2


@dataclass(frozen=True)
class RavdessName:
    """The seven fields of a RAVDESS file name."""

    modality: int
    channel: int
    emotion: int
    intensity: int
    statement: int
    repetition: int
    actor: int

    @property
    def label(self) -> str:
        return RAVDESS_CODES[self.emotion]

    @property
    def utterance(self) -> tuple[int, ...]:
        """Key shared by the audio-only, video-only and audio-video files of one take."""
        return (self.channel, self.emotion, self.intensity, self.statement, self.repetition,
                self.actor)

    @property
    def stem(self) -> str:
        return "-".join(f"{v:02d}" for v in (self.modality, *self.utterance))


def parse_ravdess_name(path: Union[str, os.PathLike]) -> RavdessName:
    """Parse a RAVDESS file name; ValueError naming the file when it is not one."""
    stem = Path(path).stem
    parts = stem.split("-")
    if len(parts) != 7 or not all(p.isdigit() and len(p) == 2 for p in parts):
        raise ValueError(f"{Path(path).name}: not a RAVDESS name (7 two-digit fields)")
    name = RavdessName(*(int(p) for p in parts))
    if name.modality not in MODALITIES or name.channel not in CHANNELS \
            or name.emotion not in RAVDESS_CODES or name.intensity not in (1, 2) \
            or name.statement not in (1, 2) or not 1 <= name.actor <= 99:
        raise ValueError(f"{Path(path).name}: field out of range for RAVDESS")
    return name


def ravdess_folds(actors: Sequence[int]) -> list[Fold]:
    """Fixed actor folds: fold k tests actors 4k-3..4k (two men, two women) and validates
    on the first two actors of the next fold (cyclic, one man and one woman), over the 24
    RAVDESS actors; actors without clips are left out, and so is a fold left without a
    test actor."""
    present = set(int(a) for a in actors)
    folds = []
    for f in block_folds(range(1, 25), FOLD_SIZE, VAL_SIZE):
        test = tuple(a for a in f.test_groups if a in present)
        if test:
            folds.append(Fold(f.name, test, tuple(a for a in f.val_groups if a in present)))
    extra = sorted(a for a in present if a > 24)
    if extra:  # not RAVDESS' own actors (e.g. a larger synthetic set): blocks of their own
        folds += [Fold(f"extra{f.name[4:]}", f.test_groups, f.val_groups)
                  for f in block_folds(extra, FOLD_SIZE, VAL_SIZE)]
    return folds


def _channels(channel: Optional[str]) -> set[int]:
    if channel in (None, "both", "all"):
        return set(CHANNELS)
    codes = {name: code for code, name in CHANNELS.items()}
    if channel not in codes:
        raise DatasetError(f"ravdess: channel must be speech, song or both, got {channel!r}")
    return {codes[channel]}


def _actor_set(actors: Union[None, int, Iterable[int]]) -> Optional[set[int]]:
    if actors is None:
        return None
    if isinstance(actors, int):
        return set(range(1, actors + 1))
    return {int(a) for a in actors}


class RavdessDataset(Dataset):
    """RAVDESS under ``root``: one clip per file of the chosen modality, or per take
    with both a 02 video-only and a 03 audio-only file (``modality="paired"``).

    ``channel``: speech, song or both; ``actors``: a number n (actors 1..n) or a list,
    None for all. Folds: :func:`ravdess_folds`, or the single fold given by explicit
    ``test_groups`` / ``val_groups`` (actor numbers). Files with other names,
    extensions or actor folders, empty files, duplicates and unpaired takes are skipped,
    logged and counted in ``skipped``.
    """

    name = "ravdess"
    labels = RAVDESS_LABELS

    def __init__(self, root: Union[str, os.PathLike], *, modality: str = "audio-video",
                 channel: Optional[str] = "speech",
                 actors: Union[None, int, Iterable[int]] = None,
                 test_groups: Optional[Iterable[int]] = None,
                 val_groups: Optional[Iterable[int]] = None):
        super().__init__(root)
        if modality not in DATASET_MODALITIES:
            raise DatasetError(f"{self.name}: modality must be one of {DATASET_MODALITIES}, "
                               f"got {modality!r}")
        self.modality = modality
        self.channels = _channels(channel)
        self.actors = _actor_set(actors)
        self._explicit = None
        if test_groups is not None:
            self._explicit = Fold.explicit(test_groups, val_groups or (), name="explicit")
        elif val_groups is not None:
            raise DatasetError(f"{self.name}: val_groups given without test_groups")

    # --- files -------------------------------------------------------------------------
    def _files(self) -> list[Path]:
        """Candidate files in Actor_XX folders (directly under the root or one level down)."""
        dirs = sorted({p for p in self.root.glob("Actor_*") if p.is_dir()}
                      | {p for p in self.root.glob("*/Actor_*") if p.is_dir()})
        return [f for d in dirs for f in sorted(d.iterdir()) if f.is_file()]

    def _parse(self, skips: SkipLog) -> list[tuple[Path, RavdessName]]:
        """Every well-formed RAVDESS file that passes the channel and actor filters."""
        out, seen = [], {}
        self._found: Counter[str] = Counter()
        for path in self._files():
            if path.name.startswith("."):
                skips.skip("hidden file", path)  # e.g. macOS "._" resource forks
                continue
            try:
                name = parse_ravdess_name(path)
            except ValueError as e:
                skips.skip(str(e).split(": ", 1)[-1], path)
                continue
            if path.suffix.lower() != _EXTENSIONS[name.modality]:
                skips.skip(f"modality {name.modality:02d} file with extension {path.suffix!r}",
                           path)
                continue
            folder = path.parent.name.split("_", 1)[-1]
            if not folder.isdigit() or int(folder) != name.actor:
                skips.skip("actor field does not match its Actor_XX folder", path)
                continue
            if path.stat().st_size == 0:
                skips.skip("empty file", path)
                continue
            if path.name in seen:
                skips.skip(f"duplicate of {seen[path.name]}", path)
                continue
            seen[path.name] = path
            self._found[f"{name.modality:02d} {MODALITIES[name.modality]} "
                        f"{CHANNELS[name.channel]}"] += 1
            if name.channel not in self.channels:
                continue
            if self.actors is not None and name.actor not in self.actors:
                continue
            out.append((path, name))
        return out

    def _scan(self, skips: SkipLog) -> list[Clip]:
        files = self._parse(skips)
        if self.modality == "paired":
            return self._paired(files, skips)
        code = _FILE_MODALITY[self.modality]
        clips = []
        for path, name in files:
            if name.modality != code:
                continue
            clips.append(Clip(
                id=name.stem, label=name.label, group=name.actor,
                video_path=path if code in (1, 2) else None,
                audio_path=path if code in (1, 3) else None, meta=self._meta(name)))
        return clips

    def _paired(self, files: list[tuple[Path, RavdessName]], skips: SkipLog) -> list[Clip]:
        video = {n.utterance: (p, n) for p, n in files if n.modality == 2}
        audio = {n.utterance: (p, n) for p, n in files if n.modality == 3}
        clips = []
        for key in sorted(video.keys() | audio.keys(), key=lambda k: (k[5], k)):
            if key not in audio:
                skips.skip("video-only file without its audio-only twin", video[key][0])
                continue
            if key not in video:
                skips.skip("audio-only file without its video-only twin", audio[key][0])
                continue
            (vpath, name), (apath, _) = video[key], audio[key]
            stem = "-".join(f"{v:02d}" for v in key)
            clips.append(Clip(id=f"02+03-{stem}", label=name.label, group=name.actor,
                              video_path=vpath, audio_path=apath,
                              meta={**self._meta(name), "modality": "paired"}))
        return clips

    def _empty_hint(self) -> str:
        found = getattr(self, "_found", None)
        if not found:
            return "no RAVDESS files in Actor_XX folders"
        want = {"paired": "02 video-only + 03 audio-only files of the same take"}.get(
            self.modality, f"{_FILE_MODALITY.get(self.modality, 0):02d} files")
        return (f"modality {self.modality!r} needs {want}; found: "
                + ", ".join(f"{n} {k}" for k, n in sorted(self._found.items())))

    @staticmethod
    def _meta(name: RavdessName) -> dict:
        return {"modality": MODALITIES[name.modality], "channel": CHANNELS[name.channel],
                "emotion": name.emotion, "intensity": name.intensity,
                "statement": name.statement, "repetition": name.repetition,
                "actor": name.actor, "gender": "male" if name.actor % 2 else "female"}

    def _folds(self, groups: Sequence[int]) -> list[Fold]:
        if self._explicit is not None:
            return [self._explicit]
        return ravdess_folds(groups)
