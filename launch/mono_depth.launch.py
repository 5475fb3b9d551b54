"""Launch the mono depth node with its entry of a node-set YAML (default: config/vehicle.yaml).

    ros2 launch depth_perception mono_depth.launch.py config:=/path/to/nodes.yaml mono_engine:=/path/engine.onnx
"""
from launch.actions import OpaqueFunction

from depth_perception.nodes.launch_helpers import dds_environment, node_actions, node_arguments, share_file
from launch import LaunchDescription

KINDS = ("mono",)


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        *dds_environment(),
        *node_arguments(share_file("config", "vehicle.yaml"), KINDS, topics=True),
        OpaqueFunction(function=lambda context: node_actions(context, KINDS, topics=True)),
    ])
