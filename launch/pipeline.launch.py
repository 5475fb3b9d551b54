"""Launch the depth nodes of a vehicle (default config/vehicle.yaml) with remappable camera and LiDAR topics.

    ros2 launch depth_perception pipeline.launch.py image:=/cam_front/image_rect camera_info:=/cam_front/camera_info \
        points:=/lidar_top/points enable_stereo:=false
"""
from launch.actions import OpaqueFunction

from depth_perception.nodes.launch_helpers import KINDS, dds_environment, node_actions, node_arguments, share_file
from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        *dds_environment(),
        *node_arguments(share_file("config", "vehicle.yaml"), KINDS, topics=True),
        OpaqueFunction(function=lambda context: node_actions(context, KINDS, topics=True)),
    ])
