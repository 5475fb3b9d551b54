"""Replay a kitti2bag bag (`ros2 bag play --clock`) into the depth nodes of config/kitti.yaml, with RViz.

    ros2 launch depth_perception kitti_replay.launch.py bag:=/path/to/drive.mcap rate:=0.5 enable_mono:=false
"""
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from depth_perception.nodes.launch_helpers import KINDS, dds_environment, node_actions, node_arguments, share_file
from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    bag, rate, loop = LaunchConfiguration("bag"), LaunchConfiguration("rate"), LaunchConfiguration("loop")
    play = ["ros2", "bag", "play", bag, "--clock", "--rate", rate]
    return LaunchDescription([
        *dds_environment(),
        DeclareLaunchArgument("bag", description="a rosbag2 bag written by `depth-perception kitti2bag`"),
        DeclareLaunchArgument("rate", default_value="1.0", description="replay speed factor"),
        DeclareLaunchArgument("loop", default_value="false", description="replay the bag again and again"),
        DeclareLaunchArgument("rviz", default_value="true", description="start RViz with our display config"),
        DeclareLaunchArgument("rviz_config", default_value=share_file("config", "depth_perception.rviz"),
                              description="RViz display config"),
        *[a for a in node_arguments(share_file("config", "kitti.yaml"), KINDS) if a.name != "use_sim_time"],
        DeclareLaunchArgument("use_sim_time", default_value="true", description="follow the bag's /clock"),
        ExecuteProcess(cmd=play, output="screen", condition=UnlessCondition(loop)),
        ExecuteProcess(cmd=[*play, "--loop"], output="screen", condition=IfCondition(loop)),
        OpaqueFunction(function=lambda context: node_actions(context, KINDS)),
        Node(package="rviz2", executable="rviz2", name="rviz2", output="screen",
             arguments=["-d", LaunchConfiguration("rviz_config")],
             parameters=[{"use_sim_time": True}], condition=IfCondition(LaunchConfiguration("rviz"))),
    ])
