"""What the launch file and the runner start, as plain values (no rclpy, no launch).

Both ``launch/perception.launch.py`` and :mod:`avemo_ros.ros.runner` take their topic
defaults, remappings and node parameters from here, so ``ros2 launch`` and the runner
give the nodes the same names, types and values.

The topic defaults follow ros-drivers ``audio_capture`` (the released audio_common, whose
launch file runs it in the namespace ``audio``): ``AudioDataStamped`` on
``/audio/audio_stamped`` and the latched ``AudioInfo`` on ``/audio/audio_info``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence, Union

__all__ = [
    "GRAPHS",
    "PERCEPTION_LIKE",
    "SPLIT_NODES",
    "TOPICS",
    "TOPIC_DESCRIPTIONS",
    "file_source_parameters",
    "media_list",
    "params_file_text",
    "parse_bool",
    "perception_parameters",
    "remap_args",
    "remappings",
    "split_ros_args",
]

#: Launch argument / runner option -> default topic.
TOPICS = {
    "image": "image",
    "audio": "/audio/audio_stamped",
    "audio_info": "/audio/audio_info",
    "emotion": "emotion",
    "audio_estimate": "audio_estimate",
    "video_estimate": "video_estimate",
}
TOPIC_DESCRIPTIONS = {
    "image": "Camera topic (sensor_msgs/Image; image_transport:=compressed subscribes "
    "<image>/compressed).",
    "audio": "Microphone topic (audio_common_msgs; default: ros-drivers audio_capture's "
    "AudioDataStamped).",
    "audio_info": "Microphone AudioInfo topic (latched; default: ros-drivers audio_capture's).",
    "emotion": "Output topic (avemo_ros/EmotionEstimate).",
    "audio_estimate": "graph:=split: the audio node's avemo_ros/ModalityEstimate topic.",
    "video_estimate": "graph:=split: the video node's avemo_ros/ModalityEstimate topic.",
}

#: ``graph`` values: one perception_node, or audio_node + video_node + fusion_node.
GRAPHS = ("all_in_one", "split")
#: The split graph's nodes, by short name (executable and node name: ``<name>_node``).
SPLIT_NODES = ("audio", "video", "fusion")
#: The nodes that take perception_node's parameters too (:func:`perception_section`).
PERCEPTION_LIKE = ("audio_node", "video_node")

PathLike = Union[str, Path]


def parse_bool(text: Union[str, bool]) -> bool:
    """A launch argument's true/false (also 1/0, yes/no, on/off)."""
    if isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def split_ros_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the program's own options, ``--ros-args ...`` and what follows) of a command line."""
    argv = list(argv)
    if "--ros-args" not in argv:
        return argv, []
    i = argv.index("--ros-args")
    return argv[:i], argv[i:]


def remappings(
    image: str = TOPICS["image"],
    audio: str = TOPICS["audio"],
    audio_info: str = TOPICS["audio_info"],
    emotion: str = TOPICS["emotion"],
    audio_estimate: str = TOPICS["audio_estimate"],
    video_estimate: str = TOPICS["video_estimate"],
) -> list[tuple[str, str]]:
    """(from, to) remappings of the perception nodes and the file source."""
    return [
        ("image", image),
        ("image/compressed", f"{image.rstrip('/')}/compressed"),
        ("audio", audio),
        ("audio_info", audio_info),
        ("emotion", emotion),
        ("audio_estimate", audio_estimate),
        ("video_estimate", video_estimate),
    ]


def graph_nodes(graph: str, split_nodes: Union[str, Sequence[str]] = SPLIT_NODES) -> list[str]:
    """The node executables a ``graph`` starts: ``perception_node``, or of the split graph
    those ``split_nodes`` names ('audio,video,fusion', a subset: each machine its own)."""
    if graph not in GRAPHS:
        raise ValueError(f"graph: expected one of {', '.join(GRAPHS)}, got {graph!r}")
    if graph == "all_in_one":
        return ["perception_node"]
    names = split_nodes.split(",") if isinstance(split_nodes, str) else list(split_nodes)
    names = [n.strip() for n in names if n.strip()]
    unknown = [n for n in names if n not in SPLIT_NODES]
    if unknown or not names:
        raise ValueError(f"split_nodes: expected a comma-separated subset of "
                         f"{','.join(SPLIT_NODES)}, got {split_nodes!r}")
    return [f"{n}_node" for n in SPLIT_NODES if n in names]


def remap_args(remaps: Sequence[tuple[str, str]]) -> list[str]:
    """``FROM:=TO`` rules for ``--ros-args -r`` (identity remaps left out)."""
    return [f"{src}:={dst}" for src, dst in remaps if src != dst]


def perception_parameters(
    model_dir: PathLike, backend: str = "auto", use_sim_time: Union[str, bool] = False
) -> dict[str, Any]:
    """Parameters the launch file / runner give perception_node on top of the YAML."""
    return {
        "model_dir": str(model_dir),
        "backend": str(backend),
        "use_sim_time": parse_bool(use_sim_time),
    }


def perception_section(params_file: PathLike) -> dict[str, Any]:
    """The ``perception_node`` parameters of a ROS parameters YAML (its ``/**/perception_node``
    or ``/**`` section): the split graph's audio and video nodes get them too (same
    parameters, same conventions); {} when the file has none."""
    import yaml

    try:
        data = yaml.safe_load(Path(params_file).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    out: dict[str, Any] = {}
    for key in ("/**", "/**/perception_node", "perception_node"):
        section = data.get(key) if isinstance(data, dict) else None
        if isinstance(section, dict):
            out.update(section.get("ros__parameters") or {})
    return out


def media_list(media: Union[str, Sequence[PathLike], None]) -> list[str]:
    """The playlist of a ``media`` argument: '' -> none, 'a.mp4' -> one file,
    '[a.mp4, b.mkv]' (a YAML list) -> several; a sequence is taken as it is."""
    if media is None:
        return []
    if not isinstance(media, str):
        return [str(p) for p in media]
    text = media.strip()
    if not text:
        return []
    if text.startswith("["):
        import yaml

        items = yaml.safe_load(text)
        if not isinstance(items, list):
            raise ValueError(f"media: expected a path or a YAML list of paths, got {media!r}")
        return [str(p) for p in items if str(p).strip()]
    return [text]


def file_source_parameters(
    media: Union[str, Sequence[PathLike]], use_sim_time: Union[str, bool] = False, **extra: Any
) -> dict[str, Any]:
    """Parameters for file_source: ``media_paths`` is a list of strings, i.e. a ROS
    string array whatever the paths look like (never one string)."""
    params: dict[str, Any] = {
        "media_paths": media_list(media),
        "use_sim_time": parse_bool(use_sim_time),
    }
    params.update(extra)
    return params


def params_file_text(params: Mapping[str, Any], node: str = "/**") -> str:
    """A ROS parameters YAML for ``params``, written the way launch_ros writes the dicts
    of a Node action (``{node: {ros__parameters: ...}}``, ``yaml.dump``)."""
    import yaml

    return yaml.dump({node: {"ros__parameters": dict(params)}}, default_flow_style=False)
