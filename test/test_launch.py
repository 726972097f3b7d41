"""The launch file and what it starts: parameter values and types, lifecycle events, transport.

Three layers:

- ``avemo_ros.ros.graph`` / ``avemo_ros.ros.transport`` (plain Python, used by both the
  launch file and the runner): always run;
- the values the launch file gives file_source reach a real rclpy FileSource as a
  string array, written the way launch_ros writes them: run wherever rclpy is;
- the launch description itself (arguments, the autostart event handler, the Node
  actions' evaluated parameters): only where launch_ros is importable.
"""

from __future__ import annotations

import importlib.util
import wave
from pathlib import Path

import numpy as np
import pytest
import yaml

from avemo_ros.ros import graph, transport

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILE = ROOT / "launch" / "perception.launch.py"
PROFILE = ROOT / "config" / transport.PROFILE_NAME

try:
    import launch_ros  # noqa: F401

    HAVE_LAUNCH = True
except ImportError:
    HAVE_LAUNCH = False
needs_launch = pytest.mark.skipif(
    not HAVE_LAUNCH, reason="launch_ros is not installed here (no ros2 launch in the PyPI wheels)"
)


# --- graph: what both the launch file and the runner give the nodes --------------------
def test_topic_defaults_follow_audio_capture():
    assert graph.TOPICS == {
        "image": "image",
        "audio": "/audio/audio_stamped",
        "audio_info": "/audio/audio_info",
        "emotion": "emotion",
        "audio_estimate": "audio_estimate",
        "video_estimate": "video_estimate",
    }
    remaps = dict(graph.remappings())
    assert (
        remaps["audio"] == "/audio/audio_stamped" and remaps["audio_info"] == "/audio/audio_info"
    )
    assert (
        dict(graph.remappings(image="/cam/image_raw/"))["image/compressed"]
        == "/cam/image_raw/compressed"
    )
    assert "image:=image" not in graph.remap_args(graph.remappings())  # identities left out


def test_graph_nodes():
    assert graph.graph_nodes("all_in_one") == ["perception_node"]
    assert graph.graph_nodes("split") == ["audio_node", "video_node", "fusion_node"]
    assert graph.graph_nodes("split", "fusion, audio") == ["audio_node", "fusion_node"]
    for bad in (("split", "audio,camera"), ("split", ""), ("both", "audio")):
        with pytest.raises(ValueError):
            graph.graph_nodes(*bad)


def test_split_nodes_get_the_perception_section(tmp_path):
    section = graph.perception_section(ROOT / "config" / "perception.yaml")
    assert section["hop_s"] == 1.0 and "partner_timeout_s" not in section
    (tmp_path / "mine.yaml").write_text("/**:\n  ros__parameters:\n    hop_s: 0.5\n")
    assert graph.perception_section(tmp_path / "mine.yaml") == {"hop_s": 0.5}
    assert graph.perception_section(tmp_path / "missing.yaml") == {}


@pytest.mark.parametrize(
    "media, expected",
    [
        ("clip.mp4", ["clip.mp4"]),
        ("  /data/a b.mkv ", ["/data/a b.mkv"]),
        ("123", ["123"]),  # never a number
        ("true", ["true"]),
        ("[a.mp4, 'b c.wav']", ["a.mp4", "b c.wav"]),
        ("", []),
    ],
)
def test_media_argument_becomes_a_list_of_strings(media, expected):
    params = graph.file_source_parameters(media, "false")
    assert params == {"media_paths": expected, "use_sim_time": False}
    assert all(type(p) is str for p in params["media_paths"])


def test_bool_arguments():
    assert graph.parse_bool("true") is True and graph.parse_bool("False") is False
    with pytest.raises(ValueError):
        graph.parse_bool("maybe")
    assert graph.perception_parameters("/m", "onnxruntime", "true") == {
        "model_dir": "/m",
        "backend": "onnxruntime",
        "use_sim_time": True,
    }


def test_split_ros_args():
    assert graph.split_ros_args(["--model-dir", "m", "--ros-args", "-p", "a:=1"]) == (
        ["--model-dir", "m"],
        ["--ros-args", "-p", "a:=1"],
    )
    assert graph.split_ros_args(["x"]) == (["x"], [])


# --- transport: one decision for the launch file and the runner -------------------------
def test_transport_default_is_the_shipped_profile(tmp_path):
    choice = transport.choose(
        {}, PROFILE, cwd=tmp_path, variables=["FASTDDS_DEFAULT_PROFILES_FILE"]
    )
    assert choice.tuned and choice.env == {"FASTDDS_DEFAULT_PROFILES_FILE": str(PROFILE.resolve())}
    assert "large-data profile" in choice.message
    explicit = transport.choose({"RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}, PROFILE, cwd=tmp_path)
    assert explicit.tuned


@pytest.mark.parametrize(
    "environ, why",
    [
        ({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}, "not Fast DDS"),
        ({"FASTDDS_BUILTIN_TRANSPORTS": "DEFAULT"}, "FASTDDS_BUILTIN_TRANSPORTS=DEFAULT is set"),
        ({"FASTDDS_DEFAULT_PROFILES_FILE": "/mine.xml"}, "/mine.xml"),
        ({"FASTRTPS_DEFAULT_PROFILES_FILE": "/mine.xml"}, "/mine.xml"),
    ],
)
def test_transport_leaves_user_settings_alone(tmp_path, environ, why):
    choice = transport.choose(environ, PROFILE, cwd=tmp_path)
    assert not choice.tuned and why in choice.message


def test_transport_respects_a_profile_in_the_working_directory(tmp_path):
    (tmp_path / "DEFAULT_FASTDDS_PROFILES.xml").write_text("<dds/>")
    assert not transport.choose({}, PROFILE, cwd=tmp_path).tuned


def test_transport_without_a_profile(tmp_path):
    choice = transport.choose({}, tmp_path / "missing.xml", cwd=tmp_path)
    assert not choice.tuned and "no fastdds_large_data.xml" in choice.message


@pytest.mark.parametrize(
    "distro, variables",
    [
        ("humble", ("FASTRTPS_DEFAULT_PROFILES_FILE",)),
        ("jazzy", ("FASTRTPS_DEFAULT_PROFILES_FILE",)),
        ("kilted", ("FASTDDS_DEFAULT_PROFILES_FILE",)),
        ("rolling", ("FASTDDS_DEFAULT_PROFILES_FILE",)),
    ],
)
def test_profile_variable_follows_the_fast_dds_version(distro, variables):
    assert transport.profile_variables({"ROS_DISTRO": distro}) == variables


def test_apply_sets_the_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env: dict = {}
    choice = transport.apply(env, PROFILE)
    assert choice.tuned and env == choice.env
    again = transport.apply(env, PROFILE)  # a child of a configured process keeps it
    assert not again.tuned and env == choice.env


def test_profile_is_valid_xml_with_large_segments():
    import xml.etree.ElementTree as ET

    ns = {"d": "http://www.eprosima.com"}
    root = ET.parse(PROFILE).getroot()
    shm = [
        t
        for t in root.iterfind(".//d:transport_descriptor", ns)
        if t.findtext("d:type", "", ns) == "SHM"
    ]
    assert shm and int(shm[0].findtext("d:segment_size", "0", ns)) >= 4 * 921600  # 4 raw frames
    participant = root.find(".//d:participant", ns)
    assert participant.get("is_default_profile") == "true"


# --- the launch file's file_source value reaches a real FileSource as a string array ---
def _wav(path: Path, seconds: float = 0.3, rate: int = 16000) -> Path:
    samples = 0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate) * 32767
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return path


def _as_launch_ros_evaluates(params: dict) -> dict:
    """launch_ros's evaluate_parameters hands lists of strings on as tuples, and its Node
    writes them with yaml.dump (``!!python/tuple``); reproduce that exactly."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}


@pytest.fixture
def ros_context():
    rclpy = pytest.importorskip("rclpy")
    from rclpy.context import Context

    ctx = Context()
    rclpy.init(args=[], context=ctx)
    yield ctx
    rclpy.try_shutdown(context=ctx)


@pytest.mark.ros
@pytest.mark.parametrize("as_launch_ros", [True, False], ids=["launch_ros_yaml", "runner_yaml"])
def test_file_source_accepts_the_launch_value(tmp_path, ros_context, as_launch_ros):
    from rclpy.parameter import Parameter

    from avemo_ros.ros.file_source import FileSource

    clip = _wav(tmp_path / "clip: 'one', two.wav")  # a name YAML would mangle unquoted
    params = graph.file_source_parameters(str(clip), "false", loop=False)
    if as_launch_ros:
        params = _as_launch_ros_evaluates(params)
    text = graph.params_file_text(params)
    assert ("!!python/tuple" in text) == as_launch_ros
    params_file = tmp_path / "launch_params.yaml"
    params_file.write_text(text)
    node = FileSource(
        context=ros_context,
        namespace="/avemo_launch_test",
        cli_args=[
            "--ros-args",
            "--params-file",
            str(ROOT / "config" / "perception.yaml"),
            "--params-file",
            str(params_file),
        ],
    )
    try:
        p = node.get_parameter("media_paths")
        assert p.type_ == Parameter.Type.STRING_ARRAY
        assert list(p.value) == [str(clip)]
        assert node.playback is not None and node.playback.paths == [str(clip)]
    finally:
        node.destroy_node()


@pytest.mark.ros
def test_a_plain_string_is_refused(tmp_path, ros_context):
    """What the old launch file produced (one string): file_source refuses the type."""
    from rclpy.exceptions import InvalidParameterTypeException

    from avemo_ros.ros.file_source import FileSource

    params_file = tmp_path / "old.yaml"
    params_file.write_text(yaml.dump({"/**": {"ros__parameters": {"media_paths": "clip.mp4"}}}))
    with pytest.raises(InvalidParameterTypeException):
        FileSource(context=ros_context, cli_args=["--ros-args", "--params-file", str(params_file)])


# --- the launch description (where launch_ros exists) -----------------------------------
def _load_launch_module():
    spec = importlib.util.spec_from_file_location("perception_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _context(**overrides):
    from launch import LaunchContext

    module = _load_launch_module()
    ld = module.generate_launch_description()
    context = LaunchContext()
    for arg in ld.get_launch_arguments():
        if arg.default_value is not None:
            context.launch_configurations[arg.name] = "".join(
                s.perform(context) for s in arg.default_value
            )
    context.launch_configurations.update({"model_dir": "/models/m", **overrides})
    return module, ld, context


@needs_launch
def test_launch_arguments_have_descriptions_defaults_and_choices():
    _, ld, _ = _context()
    args = {a.name: a for a in ld.get_launch_arguments()}
    assert {
        "namespace",
        "params_file",
        "model_dir",
        "backend",
        "image",
        "audio",
        "audio_info",
        "emotion",
        "use_sim_time",
        "autostart",
        "media",
    } <= set(args)
    for a in args.values():
        assert a.description and a.description != "no description given", a.name
    assert args["backend"].choices == ["auto", "onnxruntime", "tensorrt"]
    assert args["autostart"].choices == ["true", "false"]
    assert args["use_sim_time"].choices == ["true", "false"]


@needs_launch
def test_launch_gives_file_source_a_string_array():
    from launch_ros.actions import Node
    from launch_ros.utilities import evaluate_parameters

    module, _, context = _context(media="clip.mp4")
    actions = module.perception_actions(context)
    source = [a for a in actions if isinstance(a, Node) and a.node_executable == "file_source"]
    assert len(source) == 1
    evaluated = evaluate_parameters(context, source[0]._Node__parameters)
    values = [p for p in evaluated if isinstance(p, dict)][0]
    assert tuple(values["media_paths"]) == ("clip.mp4",)
    assert all(isinstance(v, str) for v in values["media_paths"])
    none = module.perception_actions(_context(media="")[2])
    assert not [a for a in none if isinstance(a, Node) and a.node_executable == "file_source"]


@needs_launch
def test_autostart_activates_after_configure_only():
    from launch.actions import RegisterEventHandler
    from launch_ros.actions import LifecycleNode
    from launch_ros.events.lifecycle import StateTransition
    from lifecycle_msgs.msg import State, TransitionEvent

    module, _, context = _context()
    actions = module.perception_actions(context)
    node = [a for a in actions if isinstance(a, LifecycleNode)][0]
    handlers = [a.event_handler for a in actions if isinstance(a, RegisterEventHandler)]
    assert len(handlers) == 1

    def event(start, goal):
        msg = TransitionEvent()
        msg.start_state = State(label=start)
        msg.goal_state = State(label=goal)
        return StateTransition(action=node, msg=msg)

    assert handlers[0].matches(event("configuring", "inactive"))
    assert not handlers[0].matches(event("deactivating", "inactive"))  # a manual deactivate
    assert not handlers[0].matches(event("activating", "active"))
    off = module.perception_actions(_context(autostart="false")[2])
    assert not [a for a in off if isinstance(a, RegisterEventHandler)]


@needs_launch
def test_split_graph_launches_three_lifecycle_nodes_each_autostarted():
    from launch.actions import RegisterEventHandler
    from launch_ros.actions import LifecycleNode

    module, _, context = _context(graph="split")
    actions = module.perception_actions(context)
    nodes = [a for a in actions if isinstance(a, LifecycleNode)]
    assert [n.node_executable for n in nodes] == ["audio_node", "video_node", "fusion_node"]
    assert len([a for a in actions if isinstance(a, RegisterEventHandler)]) == 3
    one = module.perception_actions(_context(graph="split", split_nodes="video")[2])
    assert [a.node_executable for a in one if isinstance(a, LifecycleNode)] == ["video_node"]


@needs_launch
def test_launch_sets_the_transport_unless_configured(monkeypatch):
    from launch.actions import SetEnvironmentVariable

    for var in transport.USER_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("RMW_IMPLEMENTATION", raising=False)
    module, _, context = _context()
    set_env = [a for a in module._transport(context) if isinstance(a, SetEnvironmentVariable)]
    assert set_env
    monkeypatch.setenv("FASTDDS_BUILTIN_TRANSPORTS", "DEFAULT")
    module, _, context = _context()
    assert not [a for a in module._transport(context) if isinstance(a, SetEnvironmentVariable)]
