"""Dataset abstraction: labelled clips with a group (actor / session), fixed folds, and
splits by group, never by clip. No ROS, no torch."""
from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

from avemo_ros.media import MediaClip, read_av

log = logging.getLogger(__name__)

# Skipped files are logged one by one up to this many per reason, then only counted.
_LOG_EACH = 10


class DatasetError(ValueError):
    """A dataset root with no usable clips, an unknown option, fold or dataset name."""


@dataclass(frozen=True)
class Clip:
    """One labelled utterance, its media and the group it is split by.

    ``start_s`` / ``end_s`` cut a segment out of ``video_path`` (e.g. one utterance of an
    IEMOCAP dialog recording); they apply to ``audio_path`` only when it is the same file,
    a separate audio file holds the utterance alone. Either path may be None (that
    modality is missing), not both.
    """

    id: str  # stable across scans, unique within a dataset
    label: str  # one of the dataset's labels
    group: int  # split unit: actor (RAVDESS) or session (IEMOCAP)
    video_path: Optional[Path]
    audio_path: Optional[Path]
    start_s: Optional[float] = None
    end_s: Optional[float] = None
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.video_path is None and self.audio_path is None:
            raise ValueError(f"clip {self.id}: needs a video path, an audio path or both")
        if self.start_s is not None and self.end_s is not None and not self.end_s > self.start_s:
            raise ValueError(f"clip {self.id}: segment end {self.end_s} is not after "
                             f"its start {self.start_s}")

    @property
    def has_video(self) -> bool:
        return self.video_path is not None

    @property
    def has_audio(self) -> bool:
        return self.audio_path is not None

    @property
    def segment(self) -> Optional[tuple[Optional[float], Optional[float]]]:
        """(start_s, end_s) of the video file, or None for the whole file."""
        if self.start_s is None and self.end_s is None:
            return None
        return (self.start_s, self.end_s)

    @property
    def audio_segment(self) -> Optional[tuple[Optional[float], Optional[float]]]:
        """The segment of the audio file: the video's when both are one file, else None."""
        if self.audio_path is not None and self.audio_path == self.video_path:
            return self.segment
        return None


def read_clip(clip: Clip) -> MediaClip:
    """Decode a clip's frames and audio (only its segment), times from the segment start."""
    return read_av(clip.video_path, clip.audio_path, video_segment=clip.segment,
                   audio_segment=clip.audio_segment)


@dataclass(frozen=True)
class Fold:
    """Which groups are held out for testing and which validate; the rest train."""

    name: str
    test_groups: tuple[int, ...]
    val_groups: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "test_groups", tuple(int(g) for g in self.test_groups))
        object.__setattr__(self, "val_groups", tuple(int(g) for g in self.val_groups))
        if not self.test_groups:
            raise DatasetError(f"fold {self.name}: no test groups")
        both = sorted(set(self.test_groups) & set(self.val_groups))
        if both:
            raise DatasetError(f"fold {self.name}: groups {both} are in both test and validation")

    @classmethod
    def explicit(cls, test_groups: Iterable[int], val_groups: Iterable[int] = (),
                 name: Optional[str] = None) -> "Fold":
        """A fold from explicit group lists (e.g. test actors 19 20, validation actor 18)."""
        test, val = tuple(test_groups), tuple(val_groups)
        if name is None:
            name = "test-" + ",".join(map(str, test)) + "-val-" + ",".join(map(str, val))
        return cls(name, test, val)


@dataclass
class Split:
    """Train / validation / test clips of one fold; no group is in two of them."""

    fold: Fold
    train: list[Clip]
    val: list[Clip]
    test: list[Clip]

    def __iter__(self):
        """``train, val, test = dataset.split(fold)``."""
        return iter((self.train, self.val, self.test))


class SkipLog:
    """Counts skipped files by reason and logs them (each up to a limit, then counted)."""

    def __init__(self, dataset: str):
        self.dataset = dataset
        self.counts: Counter[str] = Counter()

    def skip(self, reason: str, what: Union[str, os.PathLike]) -> None:
        self.counts[reason] += 1
        n = self.counts[reason]
        if n <= _LOG_EACH:
            log.warning("%s: skipped %s: %s", self.dataset, os.fspath(what), reason)
        elif n == _LOG_EACH + 1:
            log.warning("%s: more files skipped for %r; counting them silently",
                        self.dataset, reason)

    def summary(self) -> str:
        return ", ".join(f"{n} {reason}" for reason, n in self.counts.most_common()) or "none"


def block_folds(groups: Sequence[int], size: int, val_size: int, prefix: str = "fold"
                ) -> list[Fold]:
    """Consecutive blocks of ``size`` groups as test sets; validation is the first
    ``val_size`` groups of the next block (cyclic)."""
    gs = sorted(set(int(g) for g in groups))
    blocks = [tuple(gs[i:i + size]) for i in range(0, len(gs), size)]
    if len(blocks) < 2:
        return [Fold(f"{prefix}1", blocks[0], ())] if blocks else []
    return [Fold(f"{prefix}{i + 1}", b, blocks[(i + 1) % len(blocks)][:val_size])
            for i, b in enumerate(blocks)]


class Dataset:
    """Base of the datasets: a scanned clip list (cached), its labels and its folds.

    Subclasses set ``name`` and ``labels`` and implement ``_scan`` (and ``_folds``).
    After the scan, ``skipped`` counts skipped files by reason and ``dropped`` counts
    utterances left out by a label map, by raw label.
    """

    name: str = "dataset"
    labels: tuple[str, ...] = ()

    def __init__(self, root: Union[str, os.PathLike]):
        self.root = Path(root)
        self.skipped: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self._clips: Optional[list[Clip]] = None

    # --- to implement ----------------------------------------------------------------
    def _scan(self, skips: SkipLog) -> list[Clip]:
        raise NotImplementedError

    def _folds(self, groups: Sequence[int]) -> list[Fold]:
        raise NotImplementedError

    def _empty_hint(self) -> str:
        """What the scan did find, for the error when nothing was usable."""
        return ""

    # --- public ----------------------------------------------------------------------
    def clips(self) -> list[Clip]:
        """All usable clips in a stable order (scanned once); DatasetError when none."""
        if self._clips is None:
            if not self.root.is_dir():
                raise DatasetError(f"{self.name}: root {self.root} is not a directory")
            skips = SkipLog(self.name)
            self.dropped.clear()
            clips = self._scan(skips)
            self.skipped = skips.counts
            if self.dropped:
                log.info("%s: %d utterances outside the label map dropped (%s)", self.name,
                         sum(self.dropped.values()),
                         ", ".join(f"{k} {n}" for k, n in self.dropped.most_common()))
            if self.skipped:
                log.warning("%s: %d files skipped under %s (%s)", self.name,
                            sum(self.skipped.values()), self.root, skips.summary())
            if not clips:
                hint = self._empty_hint()
                dropped = sum(self.dropped.values())
                raise DatasetError(
                    f"{self.name}: no usable clips under {self.root} (skipped: {skips.summary()}"
                    + (f"; {dropped} dropped by the label map" if dropped else "") + ")"
                    + (f"; {hint}" if hint else ""))
            ids = Counter(c.id for c in clips)
            dup = [i for i, n in ids.items() if n > 1]
            if dup:
                raise DatasetError(f"{self.name}: clip ids not unique: {dup[:5]}")
            unknown = sorted({c.label for c in clips} - set(self.labels))
            if unknown:
                raise DatasetError(f"{self.name}: labels {unknown} are not in {self.labels}")
            log.info("%s: %d clips in %d groups under %s", self.name, len(clips),
                     len({c.group for c in clips}), self.root)
            self._clips = clips
        return list(self._clips)

    def groups(self) -> list[int]:
        """The groups (actors / sessions) that have clips, sorted."""
        return sorted({c.group for c in self.clips()})

    def folds(self) -> list[Fold]:
        """The dataset's fixed folds over the groups present (see the subclass)."""
        return self._folds(self.groups())

    def fold(self, which: Union[str, int]) -> Fold:
        """One of ``folds()`` by name or by position."""
        folds = self.folds()
        names = [f.name for f in folds]
        if isinstance(which, int) and not isinstance(which, bool):
            if not 0 <= which < len(folds):
                raise DatasetError(f"{self.name}: fold index {which} out of range; "
                                   f"{len(folds)} folds: {names}")
            return folds[which]
        if isinstance(which, str) and which.isdigit() and which not in names:
            return self.fold(int(which))
        for f in folds:
            if f.name == which:
                return f
        raise DatasetError(f"{self.name}: no fold {which!r}; folds: {names}")

    def split(self, fold: Union[Fold, str, int]) -> Split:
        """Train / validation / test clips of a fold (a :class:`Fold`, or one of
        ``folds()`` by name or position)."""
        if not isinstance(fold, Fold):
            fold = self.fold(fold)
        clips = self.clips()
        present = set(self.groups())
        missing = sorted((set(fold.test_groups) | set(fold.val_groups)) - present)
        if missing:
            log.warning("%s: fold %s names groups with no clips: %s", self.name, fold.name,
                        missing)
        test = [c for c in clips if c.group in fold.test_groups]
        val = [c for c in clips if c.group in fold.val_groups]
        train = [c for c in clips if c.group not in fold.test_groups
                 and c.group not in fold.val_groups]
        if not test:
            raise DatasetError(f"{self.name}: fold {fold.name} has no test clips (test groups "
                               f"{list(fold.test_groups)}, present {sorted(present)})")
        if not train:
            raise DatasetError(f"{self.name}: fold {fold.name} leaves no training clips")
        return Split(fold, train, val, test)

    def label_index(self, label: str) -> int:
        """Position of ``label`` in ``labels``."""
        return self.labels.index(label)

    def summary(self) -> dict:
        """Counts for reports: clips per label and per group, skipped and dropped files."""
        clips = self.clips()
        return {"name": self.name, "root": str(self.root), "labels": list(self.labels),
                "clips": len(clips),
                "per_label": {lbl: sum(c.label == lbl for c in clips) for lbl in self.labels},
                "per_group": dict(sorted(Counter(c.group for c in clips).items())),
                "skipped": dict(self.skipped), "dropped": dict(self.dropped)}
