"""Launch the avemo_ros perception lifecycle node(s) (and optionally a media file source).

    ros2 launch avemo_ros perception.launch.py model_dir:=/path/to/bundle \
        image:=/camera/image_raw namespace:=robot1 [media:=clip.mp4]

``graph:=split`` starts the split graph instead of the all-in-one perception_node:
audio_node, video_node and fusion_node, which talk over ``audio_estimate`` and
``video_estimate`` (avemo_ros/ModalityEstimate); ``split_nodes:=video`` starts only some
of them, so each machine launches its own part (e.g. the video node on the camera's
Jetson, ``split_nodes:=audio,fusion`` elsewhere; same model_dir everywhere).

Topic defaults match ros-drivers audio_capture (its launch file runs it in the namespace
``audio``): the microphone on ``/audio/audio_stamped`` (AudioDataStamped) with its
``/audio/audio_info``. With autostart the node is configured, then activated once
configure has succeeded (the configuring -> inactive transition only: a later manual
``deactivate`` is not undone); otherwise a lifecycle manager drives it.

Every process started here gets a Fast DDS transport that carries raw 640x480 frames
between processes (the shipped ``config/fastdds_large_data.xml``) unless you configured
Fast DDS yourself or use another RMW; the choice is logged. The parameter values and the
transport decision come from ``avemo_ros.ros.graph`` and ``avemo_ros.ros.transport``,
which the in-process runner (``ros2 run avemo_ros run_pipeline``) uses too.
"""

import os
from pathlib import Path

from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    LogInfo,
    OpaqueFunction,
    RegisterEventHandler,
    SetEnvironmentVariable,
)
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

from avemo_ros.ros import graph, transport

# share/avemo_ros when installed, the repository root in a checkout: both hold config/
SHARE = Path(__file__).resolve().parents[1]


def _transport(context):
    """SetEnvironmentVariable for the Fast DDS profile (before any node starts), logged."""
    environ = getattr(context, "environment", os.environ)
    choice = transport.choose(environ, SHARE / "config" / transport.PROFILE_NAME)
    return [SetEnvironmentVariable(name, value) for name, value in choice.env.items()] + [
        LogInfo(msg=choice.message)
    ]


def _autostart(node):
    """Configure ``node``, then activate it once configure succeeded (only then: not
    after a later deactivate)."""
    return [
        RegisterEventHandler(
            OnStateTransition(
                target_lifecycle_node=node,
                start_state="configuring",
                goal_state="inactive",
                entities=[
                    EmitEvent(
                        event=ChangeState(
                            lifecycle_node_matcher=matches_action(node),
                            transition_id=Transition.TRANSITION_ACTIVATE,
                        )
                    )
                ],
            )
        ),
        EmitEvent(
            event=ChangeState(
                lifecycle_node_matcher=matches_action(node),
                transition_id=Transition.TRANSITION_CONFIGURE,
            )
        ),
    ]


def perception_actions(context):
    """The nodes and lifecycle events for the evaluated launch arguments."""

    def cfg(name):
        return LaunchConfiguration(name).perform(context)

    namespace, params_file = cfg("namespace"), cfg("params_file")
    remaps = graph.remappings(
        cfg("image"),
        cfg("audio"),
        cfg("audio_info"),
        cfg("emotion"),
        cfg("audio_estimate"),
        cfg("video_estimate"),
    )
    actions = []
    for executable in graph.graph_nodes(cfg("graph"), cfg("split_nodes")):
        node = LifecycleNode(
            package="avemo_ros",
            executable=executable,
            name=executable,
            namespace=namespace,
            output="screen",
            remappings=remaps,
            parameters=[
                # audio_node / video_node: perception_node's parameters (its YAML section)
                *(
                    [graph.perception_section(params_file)]
                    if executable in graph.PERCEPTION_LIKE
                    else []
                ),
                params_file,
                graph.perception_parameters(cfg("model_dir"), cfg("backend"), cfg("use_sim_time")),
            ],
        )
        actions.append(node)
        if graph.parse_bool(cfg("autostart")):
            actions += _autostart(node)
    media = graph.media_list(cfg("media"))
    if media:
        actions.append(
            Node(
                package="avemo_ros",
                executable="file_source",
                name="file_source",
                namespace=namespace,
                output="screen",
                remappings=remaps,
                parameters=[params_file, graph.file_source_parameters(media, cfg("use_sim_time"))],
            )
        )
    return actions


def generate_launch_description() -> LaunchDescription:
    t, d = graph.TOPICS, graph.TOPIC_DESCRIPTIONS
    args = [
        DeclareLaunchArgument(
            "namespace", default_value="", description="Namespace of the nodes."
        ),
        DeclareLaunchArgument(
            "params_file",
            default_value=str(SHARE / "config" / "perception.yaml"),
            description="ROS parameters YAML of both nodes.",
        ),
        DeclareLaunchArgument("model_dir", description="Model bundle directory (manifest.json)."),
        DeclareLaunchArgument(
            "backend",
            default_value="auto",
            choices=["auto", "onnxruntime", "tensorrt"],
            description="Inference backend (auto: TensorRT when the bundle has "
            "engines and a GPU exists).",
        ),
        DeclareLaunchArgument("image", default_value=t["image"], description=d["image"]),
        DeclareLaunchArgument("audio", default_value=t["audio"], description=d["audio"]),
        DeclareLaunchArgument(
            "audio_info", default_value=t["audio_info"], description=d["audio_info"]
        ),
        DeclareLaunchArgument("emotion", default_value=t["emotion"], description=d["emotion"]),
        DeclareLaunchArgument(
            "graph",
            default_value="all_in_one",
            choices=list(graph.GRAPHS),
            description="all_in_one: one perception_node; split: audio_node, video_node and "
            "fusion_node (each can run on its own machine, see split_nodes).",
        ),
        DeclareLaunchArgument(
            "split_nodes",
            default_value=",".join(graph.SPLIT_NODES),
            description="graph:=split: which of audio,video,fusion to start here "
            "(comma-separated).",
        ),
        DeclareLaunchArgument(
            "audio_estimate", default_value=t["audio_estimate"], description=d["audio_estimate"]
        ),
        DeclareLaunchArgument(
            "video_estimate", default_value=t["video_estimate"], description=d["video_estimate"]
        ),
        DeclareLaunchArgument(
            "use_sim_time",
            default_value="false",
            choices=["true", "false"],
            description="Use /clock (bag replay).",
        ),
        DeclareLaunchArgument(
            "autostart",
            default_value="true",
            choices=["true", "false"],
            description="Configure, then activate once configured, through "
            "lifecycle events (false: leave it to a lifecycle manager).",
        ),
        DeclareLaunchArgument(
            "media",
            default_value="",
            description="Also play this media file (or a YAML list of files) as "
            "camera + microphone topics.",
        ),
    ]
    return LaunchDescription(
        args + [OpaqueFunction(function=_transport), OpaqueFunction(function=perception_actions)]
    )
