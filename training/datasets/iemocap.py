"""IEMOCAP: utterances of five recorded sessions, their categorical labels and media.

Layout under the root (``IEMOCAP_full_release``)::

    Session1/dialog/EmoEvaluation/Ses01F_impro01.txt   labels, one line per utterance:
        [6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]
    Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav   the utterance's audio
    Session1/dialog/avi/DivX/Ses01F_impro01.avi                     the whole dialog's video

An utterance's video is the [START, END) segment of its dialog recording. The dialog
videos show both actors of the session, not only the speaker: face detection keeps the
largest face in each frame, which may be the listener's. Each session has one female
and one male actor; the speaker of an utterance is the letter before its number
(``..._F000``: the session's woman), kept in ``Clip.meta["speaker"]``.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

from .base import Clip, Dataset, DatasetError, Fold, SkipLog

log = logging.getLogger(__name__)

#: Raw EmoEvaluation labels and what they stand for.
IEMOCAP_CODES = {
    "neu": "neutral", "hap": "happy", "sad": "sad", "ang": "angry", "exc": "excited",
    "fru": "frustrated", "sur": "surprised", "fea": "fearful", "dis": "disgust",
    "oth": "other", "xxx": "no majority",
}

#: Class sets: labels in order and the raw labels that map to them (seed 000 / 001:
#: four classes happy, sad, angry, neutral; three classes sad, angry, neutral).
LABEL_MAPS = {
    4: (("neutral", "happy", "sad", "angry"),
        {"neu": "neutral", "hap": "happy", "sad": "sad", "ang": "angry"}),
    3: (("sad", "angry", "neutral"), {"sad": "sad", "ang": "angry", "neu": "neutral"}),
}

DATASET_MODALITIES = ("audio-video", "audio", "video")
SESSIONS = (1, 2, 3, 4, 5)

_NUMBER = r"(\d+(?:\.\d*)?)"
_LINE = re.compile(rf"^\[\s*{_NUMBER}\s*-\s*{_NUMBER}\s*\]\s+(\S+)\s+(\S+)\s+\[([^\]]*)\]\s*$")
_UTTERANCE = re.compile(r"^Ses(\d\d)([FM])_(.+)_([FM])(\d+)$")


def parse_evaluation_line(line: str) -> Optional[tuple[float, float, str, str, tuple[float, ...]]]:
    """(start_s, end_s, utterance id, raw label, (valence, activation, dominance)) of one
    utterance line of an EmoEvaluation file; None for a line that is not one."""
    m = _LINE.match(line.strip())
    if m is None:
        return None
    start, end, utt, code, vad = m.groups()
    try:
        vad_values = tuple(float(v) for v in vad.split(","))
    except ValueError:
        return None
    return float(start), float(end), utt, code, vad_values


def iemocap_folds(sessions: Sequence[int]) -> list[Fold]:
    """Leave-one-session-out: fold ``sessionN`` tests session N and validates on the next
    session present (cyclic); the other sessions train."""
    ss = sorted(set(int(s) for s in sessions))
    if len(ss) < 2:
        return [Fold(f"session{s}", (s,)) for s in ss]
    return [Fold(f"session{s}", (s,), (ss[(i + 1) % len(ss)],)) for i, s in enumerate(ss)]


class IemocapDataset(Dataset):
    """IEMOCAP utterances under ``root`` with the 4- or 3-class label map.

    ``classes``: 4 (neutral, happy, sad, angry) or 3 (sad, angry, neutral);
    ``merge_excited``: count "exc" as happy (4 classes only). Utterances whose label is
    outside the map are dropped and counted by raw label in ``dropped``.
    ``modality``: audio-video (sentence wav + dialog video segment), audio or video.
    ``sessions``: which sessions to read (default: all five; a missing one is skipped
    and counted). Groups are sessions (1-5), so splits never share a speaker; folds:
    :func:`iemocap_folds`, or the single fold of explicit ``test_groups`` /
    ``val_groups`` (session numbers).
    """

    name = "iemocap"

    def __init__(self, root: Union[str, os.PathLike], *, classes: int = 4,
                 merge_excited: bool = False, modality: str = "audio-video",
                 sessions: Optional[Iterable[int]] = None,
                 test_groups: Optional[Iterable[int]] = None,
                 val_groups: Optional[Iterable[int]] = None):
        super().__init__(root)
        try:
            classes = int(classes)
        except (TypeError, ValueError):
            classes = -1
        if classes not in LABEL_MAPS:
            raise DatasetError(f"{self.name}: classes must be 4 or 3, got {classes!r}")
        labels, mapping = LABEL_MAPS[classes]
        mapping = dict(mapping)
        if merge_excited:
            if "happy" not in labels:
                raise DatasetError(f"{self.name}: merge_excited needs the happy class "
                                   f"(classes=4), not classes={classes}")
            mapping["exc"] = "happy"
        if modality not in DATASET_MODALITIES:
            raise DatasetError(f"{self.name}: modality must be one of {DATASET_MODALITIES}, "
                               f"got {modality!r}")
        self.labels = labels
        self.mapping = mapping
        self.classes = classes
        self.merge_excited = bool(merge_excited)
        self.modality = modality
        self.sessions = tuple(sorted(int(s) for s in sessions)) if sessions is not None else None
        bad = [s for s in (self.sessions or ()) if s not in SESSIONS]
        if bad:
            raise DatasetError(f"{self.name}: sessions are 1-5, got {bad}")
        self._explicit = None
        if test_groups is not None:
            self._explicit = Fold.explicit(test_groups, val_groups or (), name="explicit")
        elif val_groups is not None:
            raise DatasetError(f"{self.name}: val_groups given without test_groups")

    def _scan(self, skips: SkipLog) -> list[Clip]:
        clips: list[Clip] = []
        seen: set[str] = set()
        for session in self.sessions or SESSIONS:
            sdir = self.root / f"Session{session}"
            if not sdir.is_dir():
                if self.sessions is not None:
                    skips.skip("missing session folder", sdir)
                else:
                    log.info("%s: no %s", self.name, sdir)
                continue
            evaluation = sdir / "dialog" / "EmoEvaluation"
            if not evaluation.is_dir():
                skips.skip("session without dialog/EmoEvaluation", sdir)
                continue
            for txt in sorted(evaluation.glob("*.txt")):
                if txt.name.startswith("."):
                    skips.skip("hidden file", txt)
                    continue
                clips.extend(self._dialog(session, sdir, txt, skips, seen))
        return clips

    def _dialog(self, session: int, sdir: Path, txt: Path, skips: SkipLog,
                seen: set[str]) -> list[Clip]:
        try:
            lines = txt.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as e:
            skips.skip(f"unreadable label file ({e.strerror})", txt)
            return []
        avi_exists: dict[str, bool] = {}
        out = []
        for lineno, line in enumerate(lines, 1):
            if not line.startswith("["):
                continue  # header, blank lines and the per-evaluator lines
            where = f"{txt}:{lineno}"
            parsed = parse_evaluation_line(line)
            if parsed is None:
                skips.skip("malformed utterance line", where)
                continue
            start, end, utt, code, vad = parsed
            m = _UTTERANCE.match(utt)
            if m is None or int(m.group(1)) != session:
                skips.skip(f"utterance id not of session {session}", f"{where} ({utt})")
                continue
            if not end > start:
                skips.skip("utterance end not after its start", f"{where} ({utt})")
                continue
            if utt in seen:
                skips.skip("duplicate utterance id", f"{where} ({utt})")
                continue
            seen.add(utt)
            label = self.mapping.get(code)
            if label is None:
                if code not in IEMOCAP_CODES:
                    skips.skip(f"unknown label {code!r}", f"{where} ({utt})")
                else:
                    self.dropped[code] += 1
                continue
            dialog = utt.rsplit("_", 1)[0]
            wav = sdir / "sentences" / "wav" / dialog / f"{utt}.wav"
            avi = sdir / "dialog" / "avi" / "DivX" / f"{dialog}.avi"
            audio_path = video_path = None
            if self.modality in ("audio-video", "audio"):
                if not _usable(wav):
                    skips.skip("missing or empty sentence wav", wav)
                    continue
                audio_path = wav
            if self.modality in ("audio-video", "video"):
                if dialog not in avi_exists:
                    avi_exists[dialog] = _usable(avi)
                if not avi_exists[dialog]:
                    skips.skip("missing or empty dialog avi", avi)
                    continue
                video_path = avi
            speaker_gender = m.group(4)
            out.append(Clip(
                id=utt, label=label, group=session, video_path=video_path,
                audio_path=audio_path, start_s=start, end_s=end,
                meta={"session": session, "dialog": dialog,
                      "speaker": f"Ses{session:02d}{speaker_gender}",
                      "gender": "female" if speaker_gender == "F" else "male",
                      "scripted": "_script" in dialog, "raw_label": code,
                      "vad": vad}))
        return out

    def _folds(self, groups: Sequence[int]) -> list[Fold]:
        if self._explicit is not None:
            return [self._explicit]
        return iemocap_folds(groups)


def _usable(path: Path) -> bool:
    try:
        return path.is_file() and path.stat().st_size > 0
    except OSError:
        return False
