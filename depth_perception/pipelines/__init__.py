"""Numeric pipelines behind the nodes: arrays in, depth out, no ROS. One module per engine kind."""
from .base import DepthResult, colorize_depth

__all__ = ["DepthResult", "colorize_depth"]
