"""depth_completion_node: camera image + LiDAR PointCloud2 + the LiDAR-to-camera transform from TF -> dense depth.

Inputs (relative, remappable): image_rect, camera_info, points. The cloud is moved into the camera's optical frame
through TF (the transform at the cloud's stamp) and handed to the completion pipeline (NLSPN or IP-Basic).

Where the depth was measured decides whether the colour-guided in-fill may stand in for the engine
(`infill_coverage_px`): the cloud's frame, unless the cloud carries a spinning scanner's beam index (`ring`, as
the Velodyne, Ouster, Hesai and RoboSense drivers write it, or Livox's `line`): such a cloud comes from a LiDAR
whatever frame another tool moved it into, so it never counts as measured from the camera's viewpoint.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from ..geometry.se3 import transform_points
from ..pipelines.base import DepthResult
from ..ros.pointcloud import pointcloud2_to_xyz
from ..ros.sync import stamp_to_ns
from .base import DepthNodeBase, Frame, InputFault, InputSpec, copy_header
from .process import run_node

SCANNER_FIELDS = ("ring", "line")  # a PointCloud2 field that only a multi-beam LiDAR's points carry


def scanner_field(cloud: PointCloud2) -> str | None:
    """The first of SCANNER_FIELDS the cloud has, or None."""
    names = {f.name for f in cloud.fields}
    return next((n for n in SCANNER_FIELDS if n in names), None)


class DepthCompletionNode(DepthNodeBase):
    NODE_NAME = "depth_completion_node"
    KIND = "completion"
    INPUTS = (
        InputSpec("image_rect", Image),
        InputSpec("camera_info", CameraInfo),
        InputSpec("points", PointCloud2),
    )
    @classmethod
    def config_class(cls) -> type:
        from ..pipelines.completion import CompletionPipelineConfig

        return CompletionPipelineConfig

    def build_pipeline(self, config: Any) -> Any:
        from ..pipelines.completion import CompletionPipeline

        return CompletionPipeline(config)

    def prepare(self, msgs: dict[str, Any]) -> Frame:
        image, cloud = msgs["image_rect"], msgs["points"]
        rgb, camera = self.rgb_and_camera(image, msgs["camera_info"], "camera")
        try:
            points = pointcloud2_to_xyz(cloud, skip_nans=True)
        except (ValueError, KeyError, TypeError) as exc:
            raise InputFault("cloud", f"LiDAR cloud: {exc}") from None
        points = points[np.isfinite(points).all(axis=1)]
        if len(points) == 0:
            raise InputFault("cloud", f"LiDAR cloud in {cloud.header.frame_id!r} has no finite points "
                                      "(empty or all NaN)")
        T_cam_lidar = self.lookup_transform(image.header.frame_id, cloud.header.frame_id,
                                            stamp_to_ns(cloud.header.stamp))
        points_cam = transform_points(T_cam_lidar.astype(np.float32), points.astype(np.float32))
        rgb, camera = self.resize_input(rgb, camera)
        # a cloud from the camera's own viewpoint (a registered depth camera's) may be in-filled without the engine;
        # a scanner's, whatever its frame, has its viewpoint elsewhere (not known here: None, the engine runs)
        offset = float(np.linalg.norm(T_cam_lidar[:3, 3]))
        scanner = scanner_field(cloud)
        return Frame(copy_header(image.header), camera, rgb,
                     {"points": points_cam, "frame_offset_m": offset, "scanner_field": scanner,
                      "sensor_offset_m": None if scanner else offset})

    infill_only = False  # the last frame's measurements covered the image: the in-fill alone, no engine run
    frame_offset_m: float | None = None  # the last cloud's frame's distance from the camera (only near 0 may in-fill)
    scanner: str | None = None  # the last cloud's scanner field (then it never in-fills), or None

    def extra_diagnostics(self) -> dict[str, Any]:
        values: dict[str, Any] = {"infill_only": self.infill_only}
        if self.frame_offset_m is not None:  # a scanner's cloud: its frame's offset, not where it was measured
            values["frame_offset_m" if self.scanner else "sensor_offset_m"] = self.frame_offset_m
        if self.scanner is not None:
            values["scanner_field"] = self.scanner
        return values

    def infer(self, pipeline: Any, frame: Frame) -> DepthResult:
        self.frame_offset_m, self.scanner = frame.args["frame_offset_m"], frame.args["scanner_field"]
        result = pipeline.process(frame.rgb, frame.camera, frame.args["points"], frame.args["sensor_offset_m"])
        self.infill_only = bool(result.info.get("infill_only", 0.0))
        return result


def main(args: Sequence[str] | None = None) -> None:
    run_node(DepthCompletionNode, args)


if __name__ == "__main__":
    main()
