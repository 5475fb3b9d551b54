"""Replay a kitti2bag bag (`ros2 bag play --clock`) into the depth nodes of config/kitti.yaml, with RViz.

    ros2 launch depth_perception kitti_replay.launch.py bag:=/path/to/drive.mcap rate:=0.5 enable_mono:=false
"""
from launch.actions import DeclareLaunchArgument, EmitEvent, ExecuteProcess, LogInfo, OpaqueFunction
from launch.conditions import IfCondition, UnlessCondition
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from depth_perception.nodes.launch_helpers import (
    KINDS,
    dds_environment,
    missing_executables,
    node_actions,
    node_arguments,
    share_file,
)
from launch import LaunchDescription


def _replay(context, play):
    """Nothing starts unless everything it needs is installed: a missing `ros2 bag` or rviz2 used to fail after the
    nodes had started, leaving them running."""
    def flag(name: str) -> bool:
        return LaunchConfiguration(name).perform(context).lower() in ("true", "1", "yes")

    missing = missing_executables(flag("rviz"), need_bag=flag("play"))
    if missing:
        reason = "kitti_replay.launch.py cannot start: missing " + "; ".join(missing)
        return [LogInfo(msg=reason), EmitEvent(event=Shutdown(reason=reason))]
    replay = [
        ExecuteProcess(cmd=play, output="screen", condition=UnlessCondition(LaunchConfiguration("loop"))),
        ExecuteProcess(cmd=[*play, "--loop"], output="screen", condition=IfCondition(LaunchConfiguration("loop"))),
    ] if flag("play") else []
    return [
        *replay,
        *node_actions(context, KINDS),
        Node(package="rviz2", executable="rviz2", name="rviz2", output="screen",
             arguments=["-d", LaunchConfiguration("rviz_config")],
             parameters=[{"use_sim_time": True}], condition=IfCondition(LaunchConfiguration("rviz"))),
    ]


def generate_launch_description() -> LaunchDescription:
    bag, rate = LaunchConfiguration("bag"), LaunchConfiguration("rate")
    play = ["ros2", "bag", "play", bag, "--clock", "--rate", rate]
    return LaunchDescription([
        *dds_environment(),
        DeclareLaunchArgument("bag", default_value="",
                              description="a rosbag2 bag written by `depth-perception kitti2bag`"),
        DeclareLaunchArgument("play", default_value="true",
                              description="replay `bag` with ros2 bag play (false: the bag is played elsewhere)"),
        DeclareLaunchArgument("rate", default_value="1.0", description="replay speed factor"),
        DeclareLaunchArgument("loop", default_value="false", description="replay the bag again and again"),
        DeclareLaunchArgument("rviz", default_value="true", description="start RViz with our display config"),
        DeclareLaunchArgument("rviz_config", default_value=share_file("config", "depth_perception.rviz"),
                              description="RViz display config"),
        *[a for a in node_arguments(share_file("config", "kitti.yaml"), KINDS) if a.name != "use_sim_time"],
        DeclareLaunchArgument("use_sim_time", default_value="true", description="follow the bag's /clock"),
        OpaqueFunction(function=lambda context: _replay(context, play)),
    ])
