"""Offline evaluation: run rosbag2 bags through the node's pipeline as fast as possible.

Each bag's camera and microphone messages are read in log-time order and go through the
same steps as in ``perception_node``: the message conversions of
``avemo_ros.conversions``, a :class:`~avemo_ros.window.WindowBuffer` over header
stamps (``add_frame`` / ``add_audio``, no arrival times: the in-order offline rule), and
:meth:`EmotionEstimator.estimate` on every window it hands out, frames decoded only when
a window selects them. The result is deterministic: the same bags and model give the
same records on every run (only the measured compute times differ).
Needs ``rosbags``, not ROS.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .bags import (
    AUDIO_DATA,
    AUDIO_DATA_STAMPED,
    AUDIO_INFO,
    AUDIO_STAMPED,
    IMAGE_TYPE,
    BagError,
    find_stream_topics,
    open_bag,
    read_ground_truth,
    truth_for_window,
)
from .estimator import EmotionEstimator, FeatureExtractor
from .evaluation import WindowRecord
from . import audio_codec, conversions as conv
from .audio_stream import ByteAudioDecoder, ByteFormat, sniff_coding
from .window import NS, StreamEvent, Window, WindowBuffer

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


def _legacy_format_from_bag(bag: open_bag, default: LegacyAudioFormat) -> LegacyAudioFormat:
    """The first legacy AudioInfo in the bag (sample_format, channels, sample_rate), else
    ``default``."""
    infos = [t for t, ty in bag.topics.items() if ty == AUDIO_INFO]
    for topic in infos:
        for m in bag.messages([topic]):
            if all(hasattr(m.msg, a) for a in ("sample_format", "channels", "sample_rate")):
                info = ByteFormat.from_info(m.msg)
                fmt = LegacyAudioFormat(info.sample_format, info.channels, info.sample_rate,
                                        info.coding)
                _LOG.info("%s: legacy audio format from %s: %s", bag.path, topic, fmt)
                return fmt
            break
    return default


class _AudioConverter:
    """Audio message -> AudioChunk with the node's decoders (PCM or MP3 bytes, AudioStamped)."""

    def __init__(self, msgtype: str, fmt: LegacyAudioFormat):
        self.msgtype, self.fmt = msgtype, fmt
        self._bytes: Optional[ByteAudioDecoder] = None

    def __call__(self, msg: Any, log_time_ns: int) -> Optional[audio_codec.AudioChunk]:
        """The chunk (None while an MP3 frame is incomplete)."""
        if self.msgtype == AUDIO_STAMPED:
            return audio_codec.audio_stamped_to_chunk(msg)
        data = msg.audio.data if self.msgtype == AUDIO_DATA_STAMPED else msg.data
        if self._bytes is None:
            f = self.fmt
            coding = sniff_coding(data) if f.coding == "auto" else f.coding
            self._bytes = ByteAudioDecoder(ByteFormat(coding, f.sample_format, f.channels,
                                                      f.sample_rate))
        if self.msgtype == AUDIO_DATA_STAMPED:
            return self._bytes.decode(data, conv.stamp_to_ns(msg.header.stamp))
        # bare AudioData: no header; its arrival (log) time marks the end of the chunk
        return self._bytes.decode(data, log_time_ns, arrival=True)


def _decoder(msgtype: str) -> Callable[[Any], np.ndarray]:
    if msgtype == IMAGE_TYPE:
        return conv.image_to_rgb
    return conv.compressed_to_rgb


def _audio_problem(exc: conv.ConversionError) -> str:
    if isinstance(exc, audio_codec.NonFiniteAudio):
        return "audio_non_finite"
    return ("audio_unsupported" if isinstance(exc, audio_codec.UnsupportedAudio)
            else "audio_invalid")


def evaluate_bag(path: Path | str, estimator: EmotionEstimator, *, hop_s: float = 0.5,
                 grace_s: float = 1.0,
                 camera_topic: Optional[str] = None, audio_topic: Optional[str] = None,
                 legacy_format: LegacyAudioFormat = LegacyAudioFormat(),
                 min_truth_share: float = 0.5,
                 source: Optional[str] = None) -> tuple[list[WindowRecord], BagStats]:
    """Every window of one bag -> WindowRecords (truth from the bag), plus statistics.

    ``source`` names the bag in the records (default: the bag's file or folder name).
    Raises BagError when the bag has neither a camera nor a microphone topic.
    """
    t_start = time.perf_counter()
    path = Path(path)
    source = source or path.name
    m = estimator.manifest
    # Face boxes are cached per frame stamp: a new bag may reuse the stamps of the last one.
    estimator.extractor = FeatureExtractor(m.audio, m.video)
    buffer = WindowBuffer(window_s=m.audio.window_s, hop_s=hop_s, n_frames=m.video.n_frames,
                          grace_s=grace_s)
    records: list[WindowRecord] = []
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
        decode = _decoder(bag.topics[cam]) if cam else None
        to_chunk = None
        if mic:
            fmt = (legacy_format if bag.topics[mic] == AUDIO_STAMPED
                   else _legacy_format_from_bag(bag, legacy_format))
            to_chunk = _AudioConverter(bag.topics[mic], fmt)
            if bag.topics[mic] == AUDIO_DATA:
                _LOG.warning("%s: %s is bare AudioData (no header): chunks are stamped by "
                             "log time", path, mic)
        first = last = None

        def run(windows: list[Window]) -> None:
            for window in windows:
                stats.windows += 1
                records.append(_estimate(estimator, window, decode, source, segments,
                                         min_truth_share, stats))

        for msg in bag.messages([t for t in (cam, mic) if t], deserialize=False):
            try:
                msg = replace(msg, msg=bag.deserialize(msg.raw, msg.msgtype))
            except BagError as exc:
                stats.count("message_invalid")
                _LOG.warning("%s: message dropped: %s", path, exc)
                continue
            if msg.topic == cam:
                stats.frames += 1
                if msg.msgtype == IMAGE_TYPE:
                    problem = conv.check_image(msg.msg)
                    if problem:
                        stats.count("image_unsupported" if "encoding" in problem
                                    else "image_invalid")
                        _LOG.warning("%s: image at %d ns dropped: %s", path, msg.log_time_ns,
                                     problem)
                        continue
                elif not len(msg.msg.data):
                    stats.count("image_invalid")
                    _LOG.warning("%s: compressed image at %d ns dropped: no data", path,
                                 msg.log_time_ns)
                    continue
                stamp = conv.stamp_to_ns(msg.msg.header.stamp)
                event = buffer.add_frame(stamp, msg.msg)
            else:
                stats.audio_chunks += 1
                try:
                    chunk = to_chunk(msg.msg, msg.log_time_ns)
                except conv.ConversionError as exc:
                    stats.count(_audio_problem(exc))
                    _LOG.warning("%s: audio at %d ns dropped: %s", path, msg.log_time_ns, exc)
                    continue
                if chunk is None:
                    continue
                stamp = chunk.stamp_ns
                event = buffer.add_audio(stamp, chunk.samples, chunk.sample_rate)
                stamp = chunk.end_ns
            if event is not StreamEvent.OK:
                stats.count(event.name.lower())
            first = stamp if first is None else min(first, stamp)
            last = stamp if last is None else max(last, stamp)
            run(buffer.pop_ready())
        run(buffer.flush())
    stats.seconds_of_media = (last - first) / NS if first is not None else 0.0
    stats.wall_s = time.perf_counter() - t_start
    return records, stats


def _estimate(estimator: EmotionEstimator, window: Window,
              decode: Optional[Callable[[Any], np.ndarray]], source: str,
              segments: Sequence[Any], min_truth_share: float, stats: BagStats) -> WindowRecord:
    truth = truth_for_window(segments, window.start_ns, window.end_ns, min_truth_share)
    record = WindowRecord(source=source, start_ns=window.start_ns, end_ns=window.end_ns,
                          truth=truth, label=None)
    try:
        result = estimator.estimate(window, decode or (lambda p: p))
    except Exception as exc:  # noqa: BLE001 - like the node: a failing window is counted, not fatal
        stats.count("inference_errors")
        _LOG.warning("%s: window ending %.3f s failed: %s", source, window.end_ns / NS, exc)
        return record
    if estimator.last_bad_frames:
        stats.count("image_invalid", estimator.last_bad_frames)
    if result is None:
        stats.count("windows_skipped")
        return record
    stats.estimates += 1
    record.label = result.label
    record.confidence = float(result.confidence)
    record.probabilities = [float(p) for p in result.probabilities]
    record.modalities = int(result.modalities)
    record.latency_s = float(result.inference_time)
    return record


def evaluate_bags(bag_paths: Sequence[Path | str], bundle_dir: Path | str, *, hop_s: float = 0.5,
                  backend: str = "auto", threads: int = 0, grace_s: float = 1.0,
                  camera_topic: Optional[str] = None, audio_topic: Optional[str] = None,
                  legacy_format: LegacyAudioFormat = LegacyAudioFormat(),
                  min_truth_share: float = 0.5,
                  warmup_runs: int = 1) -> OfflineResult:
    """Evaluate bags with a model bundle; one estimator serves all bags, bags run in the given
    order.

    ``hop_s``: seconds between window ends (window length comes from the model). The
    other options are those of :func:`evaluate_bag`. ``latency_s`` of each record is its
    compute time (features + inference).
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
        records: list[WindowRecord] = []
        stats: list[BagStats] = []
        for path in bag_paths:
            recs, st = evaluate_bag(path, estimator, hop_s=hop_s, grace_s=grace_s,
                                    camera_topic=camera_topic,
                                    audio_topic=audio_topic, legacy_format=legacy_format,
                                    min_truth_share=min_truth_share)
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
