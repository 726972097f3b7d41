"""Offline evaluation: rosbag2 bags through the live node's pipeline, as fast as it runs.

Each bag's camera and microphone messages are read in log-time order and become the same
events as in ``perception_node`` (:func:`~avemo_ros.stream_events.camera_frame`,
:class:`~avemo_ros.stream_events.AudioMessageReader`), which drive the same
:class:`~avemo_ros.pipeline.StreamingPipeline`, without real time (no arrival times: the
in-order rule; no window ever dropped) and so deterministically: the same bags and model
give the same records and counters on every run (only measured compute times differ).
Problems are counted under the same names as on the node's ``/diagnostics``
(:class:`~avemo_ros.input_problems.Problem`) and logged throttled per kind.
Needs ``rosbags``, not ROS.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Sequence

from .bags import (
    AUDIO_DATA,
    AUDIO_DATA_STAMPED,
    AUDIO_INFO,
    AUDIO_STAMPED,
    BagError,
    find_stream_topics,
    open_bag,
    read_ground_truth,
    truth_for_window,
)
from .audio_stream import ByteFormat
from .conversions import DEFAULT_MAX_PIXELS, ConversionError
from .estimator import EmotionEstimator
from .evaluation import WindowRecord
from .health import Health
from .input_problems import Problem, ProblemLog, problem_of
from .pipeline import ESTIMATED, PipelineConfig, StreamingPipeline, WindowOutcome
from .speech_gate import SpeechGate, bundle_gate_config
from .stream_events import AudioMessageReader, camera_frame, microphone_chunk
from .window import NS

_LOG = logging.getLogger(__name__)

__all__ = ["BagStats", "LegacyAudioFormat", "OfflineResult", "evaluate_bag", "evaluate_bags"]


@dataclass(frozen=True)
class LegacyAudioFormat:
    """Layout of ros-drivers audio (AudioData / AudioDataStamped) when the bag has no AudioInfo.

    ``coding``: auto (MP3 or PCM, told by the bytes), wave or mp3.
    """

    sample_format: str = "S16LE"
    channels: int = 1
    sample_rate: int = 16000
    coding: str = "auto"


@dataclass
class BagStats:
    """What happened while one bag was evaluated."""

    path: str
    camera_topic: Optional[str]
    audio_topic: Optional[str]
    frames: int = 0
    audio_chunks: int = 0
    windows: int = 0
    estimates: int = 0
    truth_segments: int = 0
    seconds_of_media: float = 0.0
    wall_s: float = 0.0
    # counter -> count (dropped inputs, events)
    problems: dict[str, int] = field(default_factory=dict)
    windows_without_speech: int = 0  # windows the speech gate heard no speech in
    # every estimate (EmotionResult), window order: what annotated videos and stills draw
    results: list = field(default_factory=list, repr=False)

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the problem counter ``name``."""
        self.problems[name] = self.problems.get(name, 0) + n


@dataclass
class OfflineResult:
    """All windows of all bags, in bag order then window order."""

    records: list[WindowRecord]
    labels: list[str]
    seconds_of_media: float
    wall_s: float
    model_id: str = ""
    bags: list[BagStats] = field(default_factory=list)

    @property
    def realtime_factor(self) -> float:
        """Seconds of media evaluated per second of wall time."""
        return self.seconds_of_media / self.wall_s if self.wall_s > 0 else float("inf")


def _audio_info_in_bag(bag: open_bag) -> Optional[ByteFormat]:
    """The layout of the first ros-drivers AudioInfo in the bag, or None."""
    for topic in [t for t, ty in bag.topics.items() if ty == AUDIO_INFO]:
        for m in bag.messages([topic]):
            if all(hasattr(m.msg, a) for a in ("sample_format", "channels", "sample_rate")):
                fmt = ByteFormat.from_info(m.msg)
                _LOG.info("%s: audio format from %s: %s", bag.path, topic, fmt.describe())
                return fmt
            break
    return None


#: bag message type -> the node's audio_msg_type
AUDIO_KINDS = {AUDIO_STAMPED: "AudioStamped", AUDIO_DATA_STAMPED: "AudioDataStamped",
               AUDIO_DATA: "AudioData"}
_LOG_LEVELS = (logging.INFO, logging.WARNING, logging.ERROR)


class StreamEvaluation:
    """One stream's camera and microphone messages (log-time order) -> WindowRecords.

    The offline twin of the node: messages -> events -> pipeline. ``stats`` gets the
    counters; ``audio_kind`` is the node's audio_msg_type for the microphone messages.
    """

    def __init__(self, estimator: EmotionEstimator, stats: "BagStats", *, source: str,
                 hop_s: float = 0.5, grace_s: float = 1.0, audio_kind: str = "AudioStamped",
                 audio_format: ByteFormat = ByteFormat("auto"), segments: Sequence[Any] = (),
                 min_truth_share: float = 0.5, max_image_pixels: int = DEFAULT_MAX_PIXELS,
                 min_video_frames: int = 0, clock_offset_tolerance_s: float = 1.0,
                 log_throttle_s: float = 5.0, speech_gate: Optional[SpeechGate] = None,
                 faces: Optional[dict] = None):
        self.stats, self.source = stats, source
        self._segments, self._min_truth_share = segments, min_truth_share
        self._max_pixels = max_image_pixels
        self.health = Health()
        self.problems = ProblemLog(
            self.health, lambda level, text: _LOG.log(_LOG_LEVELS[level], "%s: %s", source, text),
            throttle_s=log_throttle_s)
        self.pipeline = StreamingPipeline(estimator, self.problems, PipelineConfig(
            hop_s=hop_s, grace_s=grace_s, min_video_frames=min_video_frames,
            clock_offset_tolerance_s=clock_offset_tolerance_s, max_waiting_windows=None,
            **(faces or {})), speech_gate)
        self.audio = AudioMessageReader(audio_kind, audio_format)
        self.records: list[WindowRecord] = []
        self._first: Optional[int] = None
        self._last: Optional[int] = None

    def _span(self, stamp: int) -> None:
        self._first = stamp if self._first is None else min(self._first, stamp)
        self._last = stamp if self._last is None else max(self._last, stamp)

    def camera(self, msg: Any, log_time_ns: int) -> None:
        """One Image / CompressedImage message."""
        self.stats.frames += 1
        try:
            event = camera_frame(msg, self._max_pixels, received_ns=log_time_ns)
        except ConversionError as exc:
            self.problems.report(problem_of(exc, Problem.IMAGE_INVALID),
                                 f"camera frame logged at {log_time_ns / NS:.3f} s dropped: {exc}")
            return
        self._span(event.stamp_ns)
        self.pipeline.push(event)
        self._collect(self.pipeline.run())

    def microphone(self, msg: Any, log_time_ns: int) -> None:
        """One audio_common_msgs message."""
        self.stats.audio_chunks += 1
        if self.audio.kind == "AudioData":  # counted as the node counts it
            self.problems.report(Problem.AUDIO_WITHOUT_HEADER, "AudioData has no header: chunks "
                                 "are stamped by log time")
        try:
            chunk = self.audio.read(msg, log_time_ns)
        except (ConversionError, AttributeError, TypeError) as exc:
            self.problems.report(problem_of(exc, Problem.AUDIO_INVALID),
                                 f"audio logged at {log_time_ns / NS:.3f} s dropped: {exc}")
            return
        if chunk is None:
            return
        event = microphone_chunk(chunk, received_ns=log_time_ns)
        self._span(event.stamp_ns)
        self._span(event.end_ns)
        self.pipeline.push(event)
        self._collect(self.pipeline.run())

    def finish(self) -> list[WindowRecord]:
        """End of the stream: the last windows; fills ``stats``; returns every record."""
        self._collect(self.pipeline.flush())
        self.stats.problems = {k: v for k, v in self.health.snapshot().items()
                               if Problem.by_key(k) is not None}
        self.stats.windows_without_speech = self.health.snapshot().get("windows_without_speech", 0)
        if self._first is not None:
            self.stats.seconds_of_media = (self._last - self._first) / NS
        return self.records

    def _collect(self, outcomes: list[WindowOutcome]) -> None:
        for outcome in outcomes:
            self.stats.windows += 1
            truth = truth_for_window(self._segments, outcome.start_ns, outcome.end_ns,
                                     self._min_truth_share)
            record = WindowRecord(source=self.source, start_ns=outcome.start_ns,
                                  end_ns=outcome.end_ns, truth=truth, label=None)
            r = outcome.result
            if outcome.status == ESTIMATED and r is not None:
                self.stats.estimates += 1
                record.label, record.confidence = r.label, float(r.confidence)
                record.probabilities = [float(p) for p in r.probabilities]
                record.modalities, record.latency_s = int(r.modalities), float(r.inference_time)
                self.stats.results.append(r)
            self.records.append(record)


def evaluate_bag(path: Path | str, estimator: EmotionEstimator, *, hop_s: float = 0.5,
                 grace_s: float = 1.0,
                 camera_topic: Optional[str] = None, audio_topic: Optional[str] = None,
                 legacy_format: LegacyAudioFormat = LegacyAudioFormat(),
                 min_truth_share: float = 0.5, min_video_frames: int = 0,
                 source: Optional[str] = None, speech_gate: Optional[SpeechGate] = None,
                 faces: Optional[dict] = None) -> tuple[list[WindowRecord], BagStats]:
    """Every window of one bag -> WindowRecords (truth from the bag), plus statistics.
    ``speech_gate``: judge each window's audio as the node does (None: all audio is used).
    ``faces``: PipelineConfig face settings (``face_tracking``, ``max_faces``,
    ``face_detector``, ``face_detector_model``; default the node's).

    ``source`` names the bag in the records (default: the bag's file or folder name).
    Raises BagError when the bag has neither a camera nor a microphone topic.
    """
    t_start = time.perf_counter()
    path = Path(path)
    source = source or path.name
    with open_bag(path) as bag:
        cam, mic = find_stream_topics(bag, camera_topic, audio_topic)
        if cam is None and mic is None:
            raise BagError(f"{path}: no camera (Image/CompressedImage) and no audio_common_msgs "
                           f"topic (topics: {bag.topics})")
        stats = BagStats(path=str(path), camera_topic=cam, audio_topic=mic)
        segments = read_ground_truth(bag)
        stats.truth_segments = len(segments)
        if cam is None or mic is None:
            _LOG.warning("%s: no %s topic: %s-only estimates", path,
                         "camera" if cam is None else "audio",
                         "audio" if cam is None else "video")
        kind = AUDIO_KINDS.get(bag.topics[mic], "AudioStamped") if mic else "AudioStamped"
        f = legacy_format
        run = StreamEvaluation(estimator, stats, source=source, hop_s=hop_s, grace_s=grace_s,
                               audio_kind=kind, segments=segments,
                               min_truth_share=min_truth_share, min_video_frames=min_video_frames,
                               audio_format=ByteFormat(f.coding, f.sample_format, f.channels,
                                                       f.sample_rate),
                               speech_gate=speech_gate, faces=faces)
        if mic and kind != "AudioStamped":
            info = _audio_info_in_bag(bag)
            if info is not None:
                run.audio.set_info(info)
            if kind == "AudioData":
                _LOG.warning("%s: %s is bare AudioData (no header): chunks are stamped by "
                             "log time", path, mic)
        for msg in bag.messages([t for t in (cam, mic) if t], deserialize=False):
            try:
                msg = replace(msg, msg=bag.deserialize(msg.raw, msg.msgtype))
            except BagError as exc:
                run.problems.report(Problem.MESSAGE_INVALID, f"message dropped: {exc}")
                continue
            if msg.topic == cam:
                run.camera(msg.msg, msg.log_time_ns)
            else:
                run.microphone(msg.msg, msg.log_time_ns)
        records = run.finish()
    stats.wall_s = time.perf_counter() - t_start
    return records, stats


def evaluate_bags(bag_paths: Sequence[Path | str], bundle_dir: Path | str, *, hop_s: float = 0.5,
                  backend: str = "auto", threads: int = 0, grace_s: float = 1.0,
                  camera_topic: Optional[str] = None, audio_topic: Optional[str] = None,
                  legacy_format: LegacyAudioFormat = LegacyAudioFormat(),
                  min_truth_share: float = 0.5, warmup_runs: int = 1,
                  speech_gate: Optional[dict] = None, faces: Optional[dict] = None
                  ) -> OfflineResult:
    """Evaluate bags with a model bundle; one estimator serves all bags, bags run in the given
    order.

    ``hop_s``: seconds between window ends (window length comes from the model). The
    other options are those of :func:`evaluate_bag`. ``latency_s`` of each record is its
    compute time (features + inference). ``speech_gate``: None, no gate; else the
    :func:`~avemo_ros.speech_gate.bundle_gate_config` overrides (``{}``: the bundle's gate,
    as the node's defaults give it). ``faces``: see :func:`evaluate_bag`.
    """
    if not bag_paths:
        raise BagError("no bags to evaluate")
    names = [Path(p).name for p in bag_paths]
    if len(set(names)) != len(names):
        raise BagError(f"bag names must be unique (they name the windows' source): {names}")
    t0 = time.perf_counter()
    estimator = EmotionEstimator(bundle_dir, backend=backend, threads=threads)
    try:
        estimator.warmup(warmup_runs)
        gate = None if speech_gate is None else SpeechGate(
            bundle_gate_config(estimator.manifest.training, **speech_gate))
        records: list[WindowRecord] = []
        stats: list[BagStats] = []
        for path in bag_paths:
            recs, st = evaluate_bag(path, estimator, hop_s=hop_s, grace_s=grace_s,
                                    camera_topic=camera_topic,
                                    audio_topic=audio_topic, legacy_format=legacy_format,
                                    min_truth_share=min_truth_share, speech_gate=gate,
                                    faces=faces)
            _LOG.info("%s: %d windows, %d estimates, %.1f s of media in %.1f s%s", path,
                      st.windows, st.estimates, st.seconds_of_media, st.wall_s,
                      f", problems {st.problems}" if st.problems else "")
            records += recs
            stats.append(st)
        labels, model_id = list(estimator.labels), estimator.model_id
    finally:
        estimator.close()
    return OfflineResult(records=records, labels=labels,
                         seconds_of_media=sum(s.seconds_of_media for s in stats),
                         wall_s=time.perf_counter() - t0, model_id=model_id, bags=stats)
