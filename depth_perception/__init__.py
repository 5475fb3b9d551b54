"""depth_perception: dense depth for ROS 2 robots (monocular, plane-sweep stereo, NLSPN completion)."""

__version__ = "0.1.0"
