"""RAVDESS file naming: seven two-digit fields, modality-channel-emotion-intensity-
statement-repetition-actor (e.g. ``01-01-03-02-01-02-12.mp4``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from avemo_ros.labels import RAVDESS_CODES

MODALITIES = {1: "audio-video", 2: "video-only", 3: "audio-only"}
CHANNELS = {1: "speech", 2: "song"}


@dataclass(frozen=True)
class RavdessName:
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


def parse_ravdess_name(path: str | Path) -> RavdessName:
    """Parse a RAVDESS file name; ValueError naming the file when it is not one."""
    stem = Path(path).stem
    parts = stem.split("-")
    if len(parts) != 7 or not all(p.isdigit() and len(p) == 2 for p in parts):
        raise ValueError(f"{Path(path).name}: not a RAVDESS name (7 two-digit fields)")
    name = RavdessName(*(int(p) for p in parts))
    if name.modality not in MODALITIES or name.channel not in CHANNELS \
            or name.emotion not in RAVDESS_CODES or name.intensity not in (1, 2) \
            or not 1 <= name.actor <= 99:
        raise ValueError(f"{Path(path).name}: field out of range for RAVDESS")
    return name


def list_clips(root: str | Path, modality: int = 1) -> list[tuple[Path, RavdessName]]:
    """All files of one modality under ``root`` (Actor_XX folders), sorted by name."""
    out = []
    for path in sorted(Path(root).glob("Actor_*/*")):
        try:
            name = parse_ravdess_name(path)
        except ValueError:
            continue
        if name.modality == modality:
            out.append((path, name))
    return out
