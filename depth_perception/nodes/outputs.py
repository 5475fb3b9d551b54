"""The depth nodes' outputs: depth (32FC1 m or 16UC1 mm), depth/confidence, depth/colorized,
depth/camera_info and depth/points, with the input's stamp and frame; an output nobody subscribes to is not
computed, and the cloud's transform is looked up before anything is published."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..pipelines.base import DepthResult, colorize_depth
from ..ros.camera_info import pinhole_to_camera_info
from ..ros.image import depth_to_image, numpy_to_image
from ..ros.pointcloud import depth_to_pointcloud2, transform_pointcloud2
from ..ros.sync import stamp_to_ns
from .inputs import Frame, copy_header


class OutputsMixin:
    """Publishing one frame's result.

    State lives on DepthNodeBase (its __init__ makes it); this class only groups one job's methods.
    """

    def has_subscribers(self) -> bool:
        return any(p.get_subscription_count() > 0 for p in self._outputs())

    def _outputs(self) -> tuple[Any, ...]:
        return (self.pub_depth, self.pub_confidence, self.pub_colorized, self.pub_camera_info, self.pub_points)

    def _publish(self, frame: Frame, result: DepthResult) -> None:
        values = self._values
        header = frame.header
        depth = result.depth  # every pipeline applies its own confidence_threshold
        want_cloud = self.pub_points.get_subscription_count() > 0
        T_target_camera = None
        target = values["target_frame"]
        if want_cloud and target and target != header.frame_id:
            # looked up before anything is published: a missing transform drops the whole frame
            T_target_camera = self.lookup_transform(target, header.frame_id, stamp_to_ns(header.stamp))
        if self.pub_depth.get_subscription_count() > 0:
            self.pub_depth.publish(depth_to_image(depth, values["output_encoding"], header=copy_header(header)))
        if self.pub_confidence.get_subscription_count() > 0:
            conf = np.ascontiguousarray(result.confidence, dtype=np.float32)
            self.pub_confidence.publish(numpy_to_image(conf, "32FC1", header=copy_header(header)))
        if self.pub_camera_info.get_subscription_count() > 0:
            self.pub_camera_info.publish(pinhole_to_camera_info(result.camera, header=copy_header(header)))
        if want_cloud:  # the largest message: after the small ones, so they are not held up
            rgb = frame.rgb if values["cloud_rgb"] and frame.rgb.shape[:2] == depth.shape else None
            cloud = depth_to_pointcloud2(depth, result.camera, header=copy_header(header), rgb=rgb,
                                         decimation=int(values["cloud_decimation"]))
            if T_target_camera is not None:
                cloud = transform_pointcloud2(cloud, T_target_camera, target)
            self.pub_points.publish(cloud)
        if self.pub_colorized.get_subscription_count() > 0:  # for people watching: last
            rgb8 = colorize_depth(depth, values["colormap_min_depth"], values["colormap_max_depth"])
            self.pub_colorized.publish(numpy_to_image(rgb8, "rgb8", header=copy_header(header)))
