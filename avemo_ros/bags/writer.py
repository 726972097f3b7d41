"""Writing rosbag2 bags without ROS: a camera topic and a microphone topic, with ground truth.

Log time = header stamp; the message types are those of :func:`avemo_ros.bags.typestore_for`.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from ..audio_codec import chunk_to_audio_data_bytes
from ..clip_stream import samples_to_ns
from .msg_types import (AUDIO_DATA, AUDIO_DATA_STAMPED, AUDIO_INFO, AUDIO_STAMPED,
                        COMPRESSED_TYPE, FLAVOURS, IMAGE_TYPE, NS, STRING_TYPE, BagError,
                        typestore_for)
from .truth import TRUTH_KEY, TRUTH_TOPIC, TruthSegment, segment_to_json, segments_to_json

__all__ = ["AudioStreamChunk", "Frame", "write_bag"]

STORAGES = ("mcap", "sqlite3")
IMAGE_KINDS = ("raw", "compressed")


@dataclass(frozen=True)
class Frame:
    """A camera frame to write: ``rgb`` (H, W, 3) uint8 stamped ``stamp_ns``."""

    stamp_ns: int
    rgb: np.ndarray


@dataclass(frozen=True)
class AudioStreamChunk:
    """An audio chunk to write: ``samples`` (n, channels) float32 in [-1, 1], first sample at
    ``stamp_ns``."""

    stamp_ns: int
    samples: np.ndarray
    sample_rate: int



def _stamp(store, ns: int):
    sec, nanosec = divmod(int(ns), NS)
    if not -(2**31) <= sec < 2**31:
        raise BagError(f"stamp {ns} ns does not fit builtin_interfaces/Time (int32 seconds)")
    return store.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)


def _header(store, ns: int, frame_id: str):
    return store.types["std_msgs/msg/Header"](stamp=_stamp(store, ns), frame_id=frame_id)


def _image_msg(store, frame: Frame, frame_id: str, kind: str, jpeg_quality: int):
    rgb = np.asarray(frame.rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or not rgb.size:
        raise BagError(f"frame at {frame.stamp_ns} ns: expected (H, W, 3) uint8 RGB, "
                       f"got {rgb.dtype} {rgb.shape}")
    header = _header(store, frame.stamp_ns, frame_id)
    if kind == "raw":
        return store.types[IMAGE_TYPE](
            header=header, height=int(rgb.shape[0]), width=int(rgb.shape[1]), encoding="rgb8",
            is_bigendian=0, step=int(rgb.shape[1] * 3), data=np.ascontiguousarray(rgb).reshape(-1))
    import cv2

    ok, enc = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    if not ok:
        raise BagError(f"frame at {frame.stamp_ns} ns: JPEG encoding failed")
    return store.types[COMPRESSED_TYPE](header=header, format="rgb8; jpeg compressed bgr8",
                                        data=enc.reshape(-1).astype(np.uint8))


def _pcm16(samples: np.ndarray) -> np.ndarray:
    """Float samples -> interleaved int16 (the same quantisation as the file_source node)."""
    return np.frombuffer(chunk_to_audio_data_bytes(samples, "S16LE"), dtype="<i2")


def _audio_msg(store, chunk: AudioStreamChunk, frame_id: str, flavour: str, headerless: bool):
    samples = np.asarray(chunk.samples, dtype=np.float32)
    if samples.ndim == 1:
        samples = samples[:, None]
    pcm = _pcm16(samples)
    if flavour == "mgonzs13":
        t = store.types
        empty = {k: np.zeros(0, dt) for k, dt in (("float32_data", np.float32),
                                                  ("int32_data", np.int32),
                                                  ("int8_data", np.int8),
                                                  ("uint8_data", np.uint8))}
        data = t[AUDIO_DATA](int16_data=pcm.astype(np.int16), **empty)
        info = t[AUDIO_INFO](format=8, channels=int(samples.shape[1]), rate=int(chunk.sample_rate),
                             chunk=int(samples.shape[0]))
        return AUDIO_STAMPED, t[AUDIO_STAMPED](
            header=_header(store, chunk.stamp_ns, frame_id),
            audio=t["audio_common_msgs/msg/Audio"](audio_data=data, info=info))
    data = store.types[AUDIO_DATA](data=pcm.view(np.uint8).copy())
    if headerless:
        return AUDIO_DATA, data
    return AUDIO_DATA_STAMPED, store.types[AUDIO_DATA_STAMPED](
        header=_header(store, chunk.stamp_ns, frame_id), audio=data)


def _chunk_end_ns(chunk: AudioStreamChunk) -> int:
    """When the chunk's last sample was captured: its stamp plus its duration."""
    return chunk.stamp_ns + samples_to_ns(len(chunk.samples), chunk.sample_rate)


def write_bag(path: Path | str, frames: Iterable[Frame], audio: Iterable[AudioStreamChunk], *,
              truth: Sequence[TruthSegment] = (), storage: str = "mcap", image_kind: str = "raw",
              audio_flavour: str = "ros_drivers", camera_topic: str = "/camera/image_raw",
              audio_topic: str = "/audio", audio_info_topic: str = "/audio_info",
              camera_frame_id: str = "camera", microphone_frame_id: str = "microphone",
              jpeg_quality: int = 90, headerless_audio: bool = False,
              write_truth: bool = True) -> dict[str, Any]:
    """Write a rosbag2 bag with a camera topic and a microphone topic, logged when a recorder
    would have received them: a frame at its header stamp, an audio chunk at its end.

    ``frames`` and ``audio`` must each be in stamp order.
    ``image_kind``: raw (rgb8 Image) or compressed (JPEG CompressedImage; the camera topic
    gets ``/compressed`` appended). ``audio_flavour``: ros_drivers (the released
    audio_common_msgs: AudioDataStamped S16LE plus one AudioInfo on ``audio_info_topic``;
    ``headerless_audio`` writes bare AudioData instead) or mgonzs13 (AudioStamped, int16).
    ``truth`` goes to the metadata and the truth topic when ``write_truth``. Returns counts
    and the time span.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer

    if storage not in STORAGES:
        raise BagError(f"unknown storage {storage!r} (one of {', '.join(STORAGES)})")
    if image_kind not in IMAGE_KINDS:
        raise BagError(f"unknown image kind {image_kind!r} (one of {', '.join(IMAGE_KINDS)})")
    if audio_flavour not in FLAVOURS:
        raise BagError(f"unknown audio flavour {audio_flavour!r} (one of {', '.join(FLAVOURS)})")
    if headerless_audio and audio_flavour != "ros_drivers":
        raise BagError("headerless audio (bare AudioData) exists in the ros_drivers flavour only")
    out = Path(path)
    if out.exists():
        raise BagError(f"{out} exists already: rosbag2 bags are never overwritten")
    store = typestore_for(audio_flavour)
    image_topic = camera_topic if image_kind == "raw" else camera_topic.rstrip("/") + "/compressed"
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    counts = {"frames": 0, "audio_chunks": 0, "truth": 0}
    first = last = None
    audio_layout: Optional[tuple[int, int]] = None
    # merge the two streams by log time: a frame when it was taken, an audio chunk when its
    # last sample was (as a recorder receives a microphone's chunks); frames first on ties
    events = heapq.merge(((f.stamp_ns, 0, i, f) for i, f in enumerate(frames)),
                         ((_chunk_end_ns(a), 1, i, a) for i, a in enumerate(audio)))
    writer = Writer(out, version=9, storage_plugin=plugin)
    if write_truth and truth:
        writer.set_custom_data(TRUTH_KEY, segments_to_json(truth))
    writer.open()
    try:
        img_conn = writer.add_connection(image_topic,
                                         IMAGE_TYPE if image_kind == "raw" else COMPRESSED_TYPE,
                                         typestore=store)
        audio_conn = info_conn = truth_conn = None
        truth_queue = sorted(truth, key=lambda s: s.start_ns) if write_truth else []
        if truth_queue:
            truth_conn = writer.add_connection(TRUTH_TOPIC, STRING_TYPE, typestore=store)
        for stamp, kind, _, item in events:
            while truth_queue and truth_queue[0].start_ns <= stamp:
                seg = truth_queue.pop(0)
                msg = store.types[STRING_TYPE](data=segment_to_json(seg))
                writer.write(truth_conn, max(seg.start_ns, 0),
                             store.serialize_cdr(msg, STRING_TYPE))
                counts["truth"] += 1
            if kind == 0:
                msg = _image_msg(store, item, camera_frame_id, image_kind, jpeg_quality)
                writer.write(img_conn, stamp, store.serialize_cdr(msg, img_conn.msgtype))
                counts["frames"] += 1
            else:
                layout = (int(item.sample_rate),
                          int(np.asarray(item.samples).reshape(len(item.samples), -1).shape[1]))
                if audio_flavour == "ros_drivers":
                    if audio_layout is None:
                        info_conn = writer.add_connection(audio_info_topic, AUDIO_INFO,
                                                          typestore=store)
                        info = store.types[AUDIO_INFO](channels=layout[1], sample_rate=layout[0],
                                                       sample_format="S16LE",
                                                       bitrate=16 * layout[0] * layout[1],
                                                       coding_format="WAVE")
                        writer.write(info_conn, stamp, store.serialize_cdr(info, AUDIO_INFO))
                    elif layout != audio_layout:
                        raise BagError(f"audio chunk at {stamp} ns: {layout[1]} ch {layout[0]} Hz "
                                       f"differs from {audio_layout[1]} ch {audio_layout[0]} Hz "
                                       "(the legacy flavour has one format)")
                audio_layout = layout
                msgtype, msg = _audio_msg(store, item, microphone_frame_id, audio_flavour,
                                          headerless_audio)
                if audio_conn is None:
                    audio_conn = writer.add_connection(audio_topic, msgtype, typestore=store)
                writer.write(audio_conn, stamp, store.serialize_cdr(msg, msgtype))
                counts["audio_chunks"] += 1
            first = stamp if first is None else first
            last = stamp
        for seg in truth_queue:  # segments after the last message
            msg = store.types[STRING_TYPE](data=segment_to_json(seg))
            writer.write(truth_conn, max(seg.start_ns, 0), store.serialize_cdr(msg, STRING_TYPE))
            counts["truth"] += 1
    except BaseException:
        writer.close()
        raise
    writer.close()
    return {"path": str(out), "storage": storage, "image_topic": image_topic,
            "audio_topic": audio_topic, **counts, "start_ns": first, "end_ns": last}

