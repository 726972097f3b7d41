"""The streaming pipeline: stamped camera frames and audio chunks in, one outcome per window out.

``push`` buffers an event (:class:`~avemo_ros.window.WindowBuffer`: frames no window will
select are dropped on arrival), reports what is wrong with it, and queues the work it
makes possible; ``step`` does one unit of that work, most urgent first:

1. a complete window (its audio has arrived): the speech gate (when one is given: audio
   it hears no speech in never reaches the audio network, and the window is video-only),
   audio features, audio network, fusion, result. This is the critical path; the video
   branch is usually done already, by
2. a window whose frames are final (its last frame sample has arrived, ~half a frame slot
   before its end): its face stack and video network, ahead of its audio;
3. a kept frame: decoded to grey and its faces found (the face source: a detect-then-
   track :class:`~avemo_ros.face_tracking.FaceTracker`, in stamp order), ahead of its
   windows.

Each tracked face (up to ``max_faces``, largest first) gets its own video branch and its
own fusion with the window's one audio branch (:mod:`avemo_ros.window_faces`); the
largest face's result is the window's, carrying every face's estimate in ``faces``.

Every window a stream completes is accounted for as a :class:`WindowOutcome`: estimated,
skipped (neither usable audio nor a face; windows with no data are skipped without any
compute; a window with no speech and no face is counted ``windows_idle``: a silent, empty
scene is normal, not a problem), dropped (only with ``max_waiting_windows``, when compute
falls behind) or failed.

Threads: a pipeline is not thread-safe. Exactly one thread calls it and owns every
field: the offline loop (no real time, deterministic), or in a live node the worker of
:class:`~avemo_ros.pipeline_thread.PipelineThread`, whose ``submit`` is all a
subscription callback calls. Problems go to a thread-safe ProblemLog.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np

from .estimator import AudioBranch, EmotionEstimator, EmotionResult, VideoBranch
from .face_frames import FaceStack, to_grey
from .face_tracks import FrameResult
from .input_problems import Problem, ProblemLog, problem_of
from .speech_gate import SpeechDecision, SpeechGate
from .stream_events import CameraFrame, MicrophoneChunk
from .window import NS, VideoWindow, Window, WindowBuffer
from .window_faces import NO_FACE_COUNTERS, WindowFaces, face_source, fused_results, window_faces

Event = Union[CameraFrame, MicrophoneChunk]
ESTIMATED, SKIPPED, DROPPED, FAILED = "estimated", "skipped", "dropped", "failed"


@dataclass(frozen=True)
class PipelineConfig:
    """Pipeline settings (the node's parameters of the same names).

    ``max_waiting_windows``: complete windows allowed to wait for compute; beyond it the
    oldest is dropped (live). None never drops (offline). ``min_video_frames``: distinct
    frames a window needs for a video modality (0: half the model's frames per window,
    never more than those). ``clock_offset_tolerance_s``: how far the
    two streams' stamps may disagree (each against its arrival time) before it is reported.
    ``face_tracking``: detect, then track several faces with ids (False: the bundle's
    detector on every whole frame, largest face only, as training crops);
    ``max_faces``: faces estimated per window; ``face_detector`` /
    ``face_detector_model``: the tracker's detector (:mod:`avemo_ros.face_detectors`).
    ``inputs``: the streams this pipeline is fed (one of them: a modality node of the
    split graph, whose windows wait for that stream only); ``absolute_grid``: window ends
    on multiples of ``hop_s`` (:class:`~avemo_ros.window.WindowBuffer`).
    """

    hop_s: float = 1.0
    grace_s: float = 1.0
    min_video_frames: int = 0
    clock_offset_tolerance_s: float = 1.0
    max_waiting_windows: Optional[int] = None
    face_tracking: bool = True
    max_faces: int = 3
    face_detector: str = "haar_alt2"
    face_detector_model: Optional[str] = None
    inputs: tuple = ("audio", "video")
    absolute_grid: bool = False


@dataclass
class WindowOutcome:
    """What became of one window: ``status`` estimated / skipped / dropped / failed."""

    start_ns: int
    end_ns: int
    status: str
    result: Optional[EmotionResult] = None
    ready_lag_s: Optional[float] = None  # window complete -> computed (queue wait), seconds
    complete_ns: Optional[int] = None  # arrival of the input that completed the window
    speech: Optional[SpeechDecision] = None  # the gate's verdict on a window skipped by it


class FrameSlot:
    """A kept frame: its event until prepared, then its grey image and its faces."""

    __slots__ = ("stamp_ns", "event", "grey", "faces", "failed")

    def __init__(self, event: CameraFrame):
        self.stamp_ns = event.stamp_ns
        self.event: Optional[CameraFrame] = event
        self.grey: Optional[np.ndarray] = None
        self.faces: Optional[FrameResult] = None
        self.failed = False

    @property
    def prepared(self) -> bool:
        return self.event is None


class ClockOffsetCheck:
    """Reports when camera and microphone stamps disagree: each stream's offset is its
    stamp minus its arrival time; offsets further apart than ``tolerance_s`` for longer
    than ``persist_s`` of arrival time are one CLOCK_OFFSET (until they agree again)."""

    def __init__(self, tolerance_s: float, persist_s: float = 1.0):
        self._tol, self._persist = int(tolerance_s * NS), int(persist_s * NS)
        self.reset()

    def reset(self) -> None:
        """Forget both offsets (a stream restarted)."""
        self._offsets: dict[str, int] = {}
        self._since: Optional[int] = None
        self._reported = False

    def check(self, stream: str, stamp_ns: int, received_ns: Optional[int]) -> Optional[str]:
        """The text to report, when this stamp makes the disagreement a problem."""
        if received_ns is None:
            return None
        self._offsets[stream] = stamp_ns - received_ns
        if len(self._offsets) < 2:
            return None
        diff = self._offsets["camera"] - self._offsets["microphone"]
        if abs(diff) <= self._tol:
            self._since, self._reported = None, False
            return None
        if self._since is None:
            self._since = received_ns
        if self._reported or received_ns - self._since < self._persist:
            return None
        self._reported = True
        return (f"camera stamps are {diff / NS:+.2f} s from the microphone's (each against its "
                f"arrival; tolerance {self._tol / NS:.2f} s): windows pair sound and images "
                "that were not simultaneous; check the drivers' clocks")


def _waited_modalities(manifest: Any, inputs: tuple = ("audio", "video")) -> tuple:
    """The modalities a window waits for: the bundle's networks (a video-only bundle does
    not wait for a microphone), both when it names none; of those, the ones fed."""
    roles = getattr(manifest, "roles", ())
    waited = tuple(r for r in ("audio", "video") if r in roles) or ("audio", "video")
    return tuple(r for r in waited if r in inputs)


class StreamingPipeline:
    """Events -> WindowOutcomes with an :class:`EmotionEstimator` (see the module doc)."""

    def __init__(self, estimator: EmotionEstimator, problems: ProblemLog,
                 config: PipelineConfig = PipelineConfig(),
                 speech_gate: Optional[SpeechGate] = None, faces: Any = None):
        m = estimator.manifest
        self.estimator, self.problems, self.config = estimator, problems, config
        self.speech_gate = speech_gate
        # the face source (window_faces): update_frame(stamp_ns, grey), reset()
        self.faces = faces if faces is not None else face_source(
            estimator, config.face_tracking, config.max_faces, config.face_detector,
            config.face_detector_model)
        self.buffer = WindowBuffer(window_s=m.audio.window_s, hop_s=config.hop_s,
                                   n_frames=m.video.n_frames, grace_s=config.grace_s,
                                   sample_rate=getattr(m.audio, "sample_rate", None),
                                   wait_for=_waited_modalities(m, config.inputs),
                                   absolute_grid=config.absolute_grid)
        self._clock = ClockOffsetCheck(config.clock_offset_tolerance_s)
        n = m.video.n_frames
        self.min_video_frames = min(config.min_video_frames or max(1, n // 2), n)
        self._to_prepare: deque[FrameSlot] = deque()
        self._video_ahead: deque[VideoWindow] = deque()
        self._video_done: dict[int, tuple[tuple[int, ...], WindowFaces]] = {}
        # (window, complete at (monotonic s), arrival of the input that completed it)
        self._waiting: deque[tuple[Window, float, Optional[int]]] = deque()
        self._received_ns: Optional[int] = None  # arrival of the event being pushed
        self._done: list[WindowOutcome] = []  # outcomes decided without compute
        self.face_detection_s = 0.0  # seconds spent finding (detecting, tracking) faces
        self.frames_prepared = 0  # frames decoded and looked at for faces so far

    # --- input ------------------------------------------------------------------------
    def push(self, event: Event, now_s: Optional[float] = None) -> None:
        """Buffer one event and queue the work it makes ready (no heavy compute here).

        ``now_s``: monotonic time for the liveness rule (default: the event's arrival).
        """
        if isinstance(event, CameraFrame):
            problem = self.buffer.add_frame(event.stamp_ns, FrameSlot(event), event.received_s)
            self._stream_problem(problem, "camera frame", event.stamp_ns)
            offset = self._clock.check("camera", event.stamp_ns, event.received_ns)
            self._to_prepare.extend(slot for _, slot in self.buffer.take_selected_frames())
        else:
            problem = self.buffer.add_audio(event.stamp_ns, event.samples, event.sample_rate,
                                            event.received_s)
            self._stream_problem(problem, "audio chunk", event.stamp_ns)
            offset = self._clock.check("microphone", event.end_ns, event.received_ns)
        if offset:
            self.problems.report(Problem.CLOCK_OFFSET, offset)
        self._received_ns = event.received_ns
        self.poll(event.received_s if now_s is None else now_s)
        self._received_ns = None

    def poll(self, now_s: Optional[float] = None) -> None:
        """Queue the windows that are ready now (e.g. a stream died: no event will come)."""
        self._video_ahead.extend(self.buffer.pop_video_ready())
        for window in self.buffer.pop_ready(now_s):
            self._window_ready(window)

    def flush(self) -> list[WindowOutcome]:
        """End of a finite input: every window reached, computed (offline)."""
        for window in self.buffer.flush():
            self._window_ready(window)
        return self.run()

    def _stream_problem(self, problem: Optional[Problem], what: str, stamp_ns: int) -> None:
        if problem is None:
            return
        if problem is Problem.TIMESTAMPS_BACKWARDS:  # a new clock: old frames are no use
            self._to_prepare.clear()
            self._video_ahead.clear()
            self._video_done.clear()
            self._clock.reset()
            self.faces.reset()
        self.problems.report(problem, f"{what} at {stamp_ns / NS:.3f} s: {problem.cause}")

    def _window_ready(self, window: Window) -> None:
        end = f"window ending {window.end_ns / NS:.3f} s"
        if window.has_video and window.distinct_frames < self.min_video_frames:
            self.problems.report(Problem.VIDEO_TOO_FEW_FRAMES, (
                f"{end}: {window.distinct_frames} distinct frame(s), min_video_frames is "
                f"{self.min_video_frames}: no video modality"))
            window.frames, window.frame_stamps_ns = [], []
        if window.audio is None and not window.has_video:
            self.problems.report(Problem.WINDOWS_SKIPPED, f"{end}: no usable audio and no "
                                 "frames: nothing to estimate")
            self._done.append(WindowOutcome(window.start_ns, window.end_ns, SKIPPED))
            return
        self._waiting.append((window, time.monotonic(), self._received_ns))
        limit = self.config.max_waiting_windows
        while limit is not None and len(self._waiting) > limit:
            old = self._waiting.popleft()[0]
            self._video_done.pop(old.end_ns, None)
            self.problems.report(Problem.WINDOWS_DROPPED, (
                f"processing falls behind: window ending {old.end_ns / NS:.3f} s dropped "
                f"for a newer one ({limit} windows waiting)"))
            self._done.append(WindowOutcome(old.start_ns, old.end_ns, DROPPED))

    # --- compute ----------------------------------------------------------------------
    @property
    def has_work(self) -> bool:
        """Whether ``step`` has anything to do."""
        return bool(self._done or self._waiting or self._video_ahead or self._to_prepare)

    def step(self) -> list[WindowOutcome]:
        """One unit of work, most urgent first; returns the outcomes decided by it (in
        window order)."""
        if self._done:
            head = self._waiting[0][0].end_ns if self._waiting else None
            out = [o for o in self._done if head is None or o.end_ns < head]
            if out:
                self._done = self._done[len(out):]
                return out
        if self._waiting:
            return [self._estimate(*self._waiting.popleft())]
        if self._video_ahead:
            self._compute_video_ahead(self._video_ahead.popleft())
        elif self._to_prepare:
            slot = self._to_prepare.popleft()
            if slot.stamp_ns >= self.buffer.next_window_start_ns:  # still needed
                self._prepare(slot)
        return []

    def run(self) -> list[WindowOutcome]:
        """Do all queued work (offline; deterministic)."""
        out: list[WindowOutcome] = []
        while self.has_work:
            out += self.step()
        return out

    def _prepare(self, slot: FrameSlot) -> None:
        """Decode a kept frame to grey and find its faces (once per frame; the frames
        queued before it first: the face source sees them in stamp order)."""
        if slot.prepared:
            return
        while self._to_prepare and self._to_prepare[0].stamp_ns < slot.stamp_ns:
            earlier = self._to_prepare.popleft()
            if earlier.stamp_ns >= self.buffer.next_window_start_ns:
                self._prepare(earlier)
        event, slot.event = slot.event, None  # the grey image is kept, the message freed
        try:
            slot.grey = to_grey(event.decode(event.payload))
        except ValueError as exc:
            slot.failed = True
            self.problems.report(problem_of(exc, Problem.IMAGE_INVALID),
                                 f"camera frame at {slot.stamp_ns / NS:.3f} s left out: {exc}")
            return
        t0 = time.perf_counter()
        slot.faces = self.faces.update_frame(slot.stamp_ns, slot.grey)
        self.face_detection_s += time.perf_counter() - t0
        self.frames_prepared += 1

    def _video_branch(self, frames: list[Any]) -> WindowFaces:
        """Every tracked face's video branch over a window's selected frames."""
        t0 = time.perf_counter()
        greys, results, bad = [], [], set()
        for slot in frames:
            self._prepare(slot)
            if slot.failed:
                bad.add(slot.stamp_ns)
                continue
            greys.append(slot.grey)
            results.append(slot.faces)
        faces = window_faces(self.estimator, greys, results, len(bad), self.config.max_faces)
        timings = faces.branches[0][1].timings
        timings["frame_preparation"] = time.perf_counter() - t0 - sum(
            sum(v.timings.values()) for _, v in faces.branches)
        return faces

    def _compute_video_ahead(self, vw: VideoWindow) -> None:
        if vw.end_ns < self.buffer.next_window_end_ns or \
                len(set(vw.frame_stamps_ns)) < self.min_video_frames:
            return  # its window is out already (it computes its own video) or has none
        try:
            self._video_done[vw.end_ns] = (tuple(vw.frame_stamps_ns),
                                           self._video_branch(vw.frames))
        except Exception:  # noqa: BLE001 - the window computes it again and reports it
            self._video_done.pop(vw.end_ns, None)

    def _estimate(self, window: Window, ready_s: float, complete_ns: Optional[int]
                  ) -> WindowOutcome:
        t0 = time.perf_counter()
        wait = time.monotonic() - ready_s
        end = f"window ending {window.end_ns / NS:.3f} s"
        try:
            done = self._video_done.pop(window.end_ns, None)
            if not window.has_video:
                faces = WindowFaces([("", VideoBranch(FaceStack(None, False, 0.0, None),
                                                      None, None))], None)
            elif done is not None and done[0] == tuple(window.frame_stamps_ns):
                faces = done[1]
            else:
                faces = self._video_branch(window.frames)
            audio, speech = self._audio_branch(window)
            result = fused_results(self.estimator, window.start_ns, window.end_ns, audio,
                                   faces, critical_time=time.perf_counter() - t0,
                                   speech=speech)
        except Exception as exc:  # noqa: BLE001 - a failing window must not stop the stream
            self.problems.report(Problem.INFERENCE_ERRORS,
                                 f"{end} failed: {type(exc).__name__}: {exc}")
            return WindowOutcome(window.start_ns, window.end_ns, FAILED, None, wait, complete_ns)
        self._prune_video()
        if window.has_video and faces.reason is not None:
            self.problems.count(NO_FACE_COUNTERS[faces.reason])  # why the frames show none
        if result is None:
            if (speech is not None and not speech.speech_detected) or (
                    "audio" not in self.config.inputs and window.has_video):
                self.problems.count("windows_idle")  # nobody speaks / nobody in view
            else:
                self.problems.report(Problem.WINDOWS_SKIPPED,
                                     f"{end} has neither usable audio nor a face: no estimate")
            return WindowOutcome(window.start_ns, window.end_ns, SKIPPED, None, wait, complete_ns,
                                 speech)
        if window.has_video and not result.face_found:
            self.problems.count("windows_without_face")
        return WindowOutcome(window.start_ns, window.end_ns, ESTIMATED, result, wait, complete_ns)

    def _audio_branch(self, window: Window) -> tuple[AudioBranch, Optional[SpeechDecision]]:
        """The speech gate's verdict, then the audio branch unless the gate heard no speech."""
        if window.audio is None:
            return AudioBranch(None, None, None), None
        speech = None
        if self.speech_gate is not None:
            speech = self.speech_gate(window.audio, window.sample_rate)
            if not speech.speech_detected:
                self.problems.count("windows_without_speech")
                if not self.estimator.keeps_unvoiced_audio:
                    return AudioBranch(None, None, None, {"speech_gate": speech.compute_s}), speech
        audio = self.estimator.audio_branch(window.audio, window.sample_rate)
        if speech is not None:
            audio.timings["speech_gate"] = speech.compute_s
        return audio, speech

    def _prune_video(self) -> None:
        oldest = self.buffer.next_window_end_ns
        if self._waiting:
            oldest = min(oldest, self._waiting[0][0].end_ns)
        for end in [e for e in self._video_done if e < oldest]:
            del self._video_done[end]
