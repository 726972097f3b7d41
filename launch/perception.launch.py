"""Launch the avemo_ros perception lifecycle node (and optionally a media file source).

    ros2 launch avemo_ros perception.launch.py model_dir:=/path/to/bundle \
        image:=/camera/image_raw audio:=/audio namespace:=robot1

The node is brought to active through lifecycle events (configure, then activate once it
reports inactive) when autostart is true; otherwise a lifecycle manager drives it.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.conditions import IfCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition


def generate_launch_description() -> LaunchDescription:
    cfg = LaunchConfiguration
    args = [
        DeclareLaunchArgument("namespace", default_value="", description="Namespace of the nodes."),
        DeclareLaunchArgument(
            "params_file", description="ROS parameters YAML.",
            default_value=PathJoinSubstitution([FindPackageShare("avemo_ros"), "config",
                                                "perception.yaml"])),
        DeclareLaunchArgument("model_dir", description="Model bundle directory (manifest.json)."),
        DeclareLaunchArgument("backend", default_value="auto", description="Inference backend.",
                              choices=["auto", "onnxruntime", "tensorrt"]),
        DeclareLaunchArgument("image", default_value="image", description="Camera topic."),
        DeclareLaunchArgument("audio", default_value="audio", description="Microphone topic."),
        DeclareLaunchArgument("emotion", default_value="emotion", description="Output topic."),
        DeclareLaunchArgument("use_sim_time", default_value="false", choices=["true", "false"],
                              description="Use /clock (bag replay)."),
        DeclareLaunchArgument("autostart", default_value="true", choices=["true", "false"],
                              description="Configure and activate through lifecycle events."),
        DeclareLaunchArgument("media", default_value="",
                              description="Also play this media file as camera + microphone."),
    ]
    remaps = [("image", cfg("image")), ("image/compressed", [cfg("image"), "/compressed"]),
              ("audio", cfg("audio")), ("emotion", cfg("emotion"))]
    perception = LifecycleNode(
        package="avemo_ros", executable="perception_node", name="perception_node",
        namespace=cfg("namespace"), output="screen", remappings=remaps,
        parameters=[cfg("params_file"), {"model_dir": cfg("model_dir"),
                                         "backend": cfg("backend"),
                                         "use_sim_time": cfg("use_sim_time")}])
    configure = EmitEvent(
        event=ChangeState(lifecycle_node_matcher=matches_action(perception),
                          transition_id=Transition.TRANSITION_CONFIGURE),
        condition=IfCondition(cfg("autostart")))
    activate_when_inactive = RegisterEventHandler(
        OnStateTransition(
            target_lifecycle_node=perception, goal_state="inactive",
            entities=[EmitEvent(event=ChangeState(
                lifecycle_node_matcher=matches_action(perception),
                transition_id=Transition.TRANSITION_ACTIVATE))]),
        condition=IfCondition(cfg("autostart")))
    file_source = Node(
        package="avemo_ros", executable="file_source", name="file_source",
        namespace=cfg("namespace"), output="screen", remappings=remaps,
        parameters=[cfg("params_file"), {"media_paths": [cfg("media")],
                                         "use_sim_time": cfg("use_sim_time")}],
        condition=IfCondition(PythonExpression(["'", cfg("media"), "' != ''"])))
    return LaunchDescription(args + [perception, activate_when_inactive, configure, file_source])
