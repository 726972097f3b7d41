"""Every kind of input or processing problem, by one name, and how each is counted and logged.

:class:`Problem` is the one enum: its value is the counter name used on ``/diagnostics``
(live) and in the offline report (``BagStats.problems``) alike, and it carries the level
a growing counter raises. :class:`ProblemLog` counts a problem and logs it throttled per
kind, so one noisy kind never hides another. Exceptions say which kind they are
(:func:`problem_of`), never by their text.
"""
from __future__ import annotations

import enum
import re
import threading
import time
from typing import Callable, Optional

OK, WARN, ERROR = 0, 1, 2
_NUMBERS = re.compile(r"[-+]?\d+(\.\d+)?")


class Problem(enum.Enum):
    """Kinds of problem; ``value`` is the counter name, ``level`` 0 OK, 1 WARN, 2 ERROR."""

    def __new__(cls, key: str, level: int, cause: str):
        obj = object.__new__(cls)
        obj._value_ = key
        obj.level = level
        obj.cause = cause
        return obj

    # camera input
    IMAGE_UNSUPPORTED = ("image_unsupported", ERROR, "camera images of an unsupported encoding")
    IMAGE_INVALID = ("image_invalid", ERROR, "malformed or undecodable camera images")
    IMAGE_TOO_LARGE = ("image_too_large", ERROR, "camera images over max_image_pixels")
    FRAMES_DUPLICATE = ("frames_duplicate", WARN, "camera frames repeating a stamp")
    FRAMES_LOST = ("frames_lost", WARN, "camera frames lost in transport")
    # microphone input
    AUDIO_UNSUPPORTED = ("audio_unsupported", ERROR, "audio of an unsupported format")
    AUDIO_INVALID = ("audio_invalid", ERROR, "malformed audio messages")
    AUDIO_NON_FINITE = ("audio_non_finite", ERROR, "audio holding NaN or infinity")
    AUDIO_RATE_CHANGES = ("audio_rate_changes", ERROR, "the audio sample rate changed")
    AUDIO_DUPLICATE = ("audio_duplicate", WARN, "audio chunks repeating a stamp")
    AUDIO_LATE = ("audio_late", WARN, "audio chunks older than audio already received")
    AUDIO_LOST = ("audio_lost", WARN, "audio messages lost in transport")
    AUDIO_INFO_MISMATCH = ("audio_info_mismatch", WARN, "audio_info disagrees with parameters")
    AUDIO_TYPE_MISMATCH = ("audio_type_mismatch", WARN, "another audio type on the topic")
    AUDIO_QOS_INCOMPATIBLE = ("audio_qos_incompatible", WARN, "an audio publisher's QoS")
    AUDIO_CLOCK_MAPPED = ("audio_clock_mapped", WARN, "audio stamps on a foreign clock")
    AUDIO_WITHOUT_HEADER = ("audio_without_header", OK, "headerless audio, stamped on arrival")
    # both streams
    TIMESTAMPS_BACKWARDS = ("timestamps_backwards", ERROR, "stamps jumped back: stream restart")
    STREAM_GAPS = ("stream_gaps", WARN, "gaps in a stream")
    STALE_DROPPED = ("stale_dropped", WARN, "inputs older than every open window")
    CLOCK_OFFSET = ("clock_offset", WARN, "camera and microphone stamps disagree")
    MESSAGE_INVALID = ("message_invalid", ERROR, "messages that cannot be deserialized")
    # windows and compute
    VIDEO_TOO_FEW_FRAMES = ("video_too_few_frames", WARN, "windows with too few distinct frames")
    WINDOWS_SKIPPED = ("windows_skipped", WARN, "windows with neither usable audio nor a face")
    WINDOWS_DROPPED = ("windows_dropped", WARN, "windows dropped: compute falls behind")
    INPUTS_DROPPED = ("inputs_dropped", WARN, "inputs dropped: the worker's queue is full")
    INFERENCE_ERRORS = ("inference_errors", ERROR, "windows whose computation failed")
    CONFIGURE_FAILURES = ("configure_failures", ERROR, "the model bundle could not be loaded")
    # the split graph's fusion node and its partners (the modality nodes)
    PARTNER_SILENT = ("partner_silent", WARN, "a modality node fell silent")
    PARTNER_LATE = ("partner_late", WARN, "modality estimates later than their window")
    PARTNER_MODEL_MISMATCH = ("partner_model_mismatch", ERROR, "a partner runs another model")
    PARTNER_GRID_MISMATCH = ("partner_grid_mismatch", ERROR, "the partners' hop_s differ")

    @classmethod
    def by_key(cls, key: str) -> Optional["Problem"]:
        """The problem whose counter is ``key``, or None for a plain counter."""
        try:
            return cls(key)
        except ValueError:
            return None


class InputError(ValueError):
    """Base of the conversion errors that know their kind of problem (``problem``)."""

    problem: Optional[Problem] = None


def problem_of(exc: BaseException, default: Problem) -> Problem:
    """The kind of problem an exception stands for (its class says), else ``default``."""
    return getattr(exc, "problem", None) or default


class ProblemLog:
    """Counts problems into a :class:`~avemo_ros.health.Health` and logs them, throttled
    per kind: each kind at most once per ``throttle_s`` (the repeats suppressed meanwhile
    are counted and named in its next line). A kind's different messages (its text with
    the numbers left out: "sample format 999" and "no int24_data") are throttled apart,
    so one cause never hides another. Thread-safe.

    ``log(level, text)`` writes one line (level 0 info, 1 warning, 2 error).
    """

    def __init__(self, health, log: Callable[[int, str], None], throttle_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic):
        self.health, self._log, self.throttle_s, self._clock = health, log, throttle_s, clock
        self._last: dict[tuple[Problem, str], float] = {}
        self._suppressed: dict[tuple[Problem, str], int] = {}
        self._lock = threading.Lock()

    def report(self, problem: Problem, text: str, n: int = 1) -> None:
        """Count ``n`` of ``problem`` and log ``text`` unless this kind was logged lately."""
        self.health.count(problem.value, n, problem=text)
        now = self._clock()
        key = (problem, _NUMBERS.sub("#", text))
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.throttle_s:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            self._last[key] = now
            more = self._suppressed.pop(key, 0)
        suffix = f" ({more} more {problem.value} since the last line)" if more else ""
        self._log(problem.level, f"{problem.value}: {text}{suffix}")

    def count(self, name: str, n: int = 1) -> None:
        """A plain event counter (no problem, no log line)."""
        self.health.count(name, n)
