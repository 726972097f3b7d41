"""Parameters of the ``file_source`` node: defaults, descriptions, allowed values.

Only ``loop`` and ``rate`` may change at run time; ``media_paths`` has no default (it is
required unless the node is given pre-decoded clips).
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

from ..audio_codec import AUDIO_MSG_TYPES, LEGACY_SAMPLE_FORMATS, STAMPED_SAMPLE_FORMATS
from .params import STRING_ARRAY, ParamSpec

__all__ = ["DEFAULT_SAMPLE_FORMAT", "PARAMS"]

DEFAULT_SAMPLE_FORMAT = {"AudioStamped": "int16", "AudioDataStamped": "S16LE",
                         "AudioData": "S16LE"}


def _no_empty_paths(paths: Any, _: Mapping[str, Any]) -> Optional[str]:
    return "media_paths must not contain empty paths" if any(
        not str(p).strip() for p in paths) else None


def _sample_format_fits_type(value: Any, others: Mapping[str, Any]) -> Optional[str]:
    """A sample format the audio message type can carry ('' = its default)."""
    audio_type = others.get("audio_msg_type", "AudioDataStamped")
    allowed = STAMPED_SAMPLE_FORMATS if audio_type == "AudioStamped" else LEGACY_SAMPLE_FORMATS
    if value and value not in allowed:
        return (f"audio_sample_format {value!r} is not valid for {audio_type} "
                f"(one of {', '.join(allowed)})")
    return None


def _native_or_audible(value: Any, _: Mapping[str, Any]) -> Optional[str]:
    if value != 0 and value < 1000:
        return f"audio_rate must be 0 (native) or >= 1000 Hz, got {value}"
    return None


PARAMS = (
    ParamSpec("media_paths", None, "Media files to play in order (playlist).", read_only=True,
              kind=STRING_ARRAY, rule=_no_empty_paths, constraints="at least one path"),
    ParamSpec("loop", False, "Restart the playlist at its end."),
    ParamSpec("rate", 1.0, "Playback speed factor (stamps still follow media time).",
              range=(0.01, 100.0)),
    ParamSpec("image_transport", "raw", "'raw' publishes image, 'compressed' image/compressed.",
              choices=("raw", "compressed"), read_only=True),
    ParamSpec("image_encoding", "rgb8", "Encoding of raw images.", choices=("rgb8", "bgr8"),
              read_only=True),
    ParamSpec("jpeg_quality", 90, "JPEG quality for image/compressed.", range=(1, 100),
              read_only=True),
    ParamSpec("audio_msg_type", "AudioDataStamped", "audio_common_msgs type published on audio.",
              choices=AUDIO_MSG_TYPES, read_only=True),
    ParamSpec("audio_sample_format", "",
              "Sample format: AudioStamped int16|int32|int24|float32|int8|uint8, legacy S16LE, "
              "S32LE, F32LE, S24LE, U8, S8, ... ('' = int16 / S16LE).", read_only=True,
              rule=_sample_format_fits_type),
    ParamSpec("audio_chunk_s", 0.032, "Audio chunk length in seconds.", range=(0.001, 1.0),
              read_only=True),
    ParamSpec("audio_rate", 0, "Resample audio to this rate in Hz (0 = native).",
              range=(0, 384000), read_only=True, rule=_native_or_audible,
              constraints="0 or >= 1000"),
    ParamSpec("camera_frame_id", "camera", "frame_id of image headers.", read_only=True),
    ParamSpec("microphone_frame_id", "microphone", "frame_id of audio headers.", read_only=True),
    ParamSpec("start_delay_s", 0.0, "Wait this long after start-up before playing.",
              range=(0.0, 3600.0), read_only=True),
)
