"""rosbag2 files (MCAP / sqlite3) without ROS: write camera + microphone bags, read them back.

Built on the ``rosbags`` library. One module per job:

* :mod:`.msg_types` — type names, the two ``audio_common_msgs`` flavours, typestores
  (definitions the bag embeds win; else the .msg files shipped as package data);
* :mod:`.reader` — :func:`open_bag`, :func:`read_messages`, :func:`find_stream_topics`,
  :func:`bag_info`, :func:`read_ground_truth`;
* :mod:`.writer` — :func:`write_bag` from :class:`Frame` and :class:`AudioStreamChunk`;
* :mod:`.truth` — :class:`TruthSegment`, stored in the metadata (``custom_data`` key
  :data:`TRUTH_KEY`) and as ``std_msgs/String`` on :data:`TRUTH_TOPIC`;
  :func:`truth_for_window`;
* :mod:`.timeline` — :func:`timeline_from_clips`: decoded clips laid end to end.
"""
from .msg_types import (AUDIO_DATA, AUDIO_DATA_STAMPED, AUDIO_INFO, AUDIO_STAMPED, AUDIO_TYPES,
                        CAMERA_TYPES, COMPRESSED_TYPE, EMOTION_TYPE, FLAVOURS, IMAGE_TYPE,
                        STRING_TYPE, BagError, bag_typestore, typestore_for)
from .reader import (BagInfo, BagMessage, bag_info, find_stream_topics, open_bag,
                     read_ground_truth, read_messages)
from .timeline import Timeline, timeline_from_clips
from .truth import TRUTH_KEY, TRUTH_TOPIC, TruthSegment, truth_for_window
from .writer import AudioStreamChunk, Frame, write_bag

__all__ = [
    "AUDIO_DATA",
    "AUDIO_DATA_STAMPED",
    "AUDIO_INFO",
    "AUDIO_STAMPED",
    "AUDIO_TYPES",
    "AudioStreamChunk",
    "BagError",
    "BagInfo",
    "BagMessage",
    "CAMERA_TYPES",
    "COMPRESSED_TYPE",
    "EMOTION_TYPE",
    "FLAVOURS",
    "Frame",
    "IMAGE_TYPE",
    "STRING_TYPE",
    "TRUTH_KEY",
    "TRUTH_TOPIC",
    "Timeline",
    "TruthSegment",
    "bag_info",
    "bag_typestore",
    "find_stream_topics",
    "open_bag",
    "read_ground_truth",
    "read_messages",
    "timeline_from_clips",
    "truth_for_window",
    "typestore_for",
    "write_bag",
]
