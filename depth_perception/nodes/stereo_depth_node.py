"""stereo_depth_node: a rectified stereo pair (+ optional previous frames posed by TF) -> depth in the left camera.

Inputs (relative, remappable): left/image_rect, right/image_rect, left/camera_info, right/camera_info. The baseline
comes from the two projection matrices (right P[0, 3] = -fx * B, relative to the left P). With
`multiview_frames` > 0 the previous left images are added as extra views, posed through TF in `odom_frame`.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sensor_msgs.msg import CameraInfo, Image

from ..geometry.camera import baseline_from_projections
from ..pipelines.base import DepthResult
from ..ros.camera_info import camera_info_to_model
from ..ros.sync import stamp_to_ns
from .base import DepthNodeBase, Frame, InputFault, InputSpec, copy_header
from .parameters import ParamSpec
from .process import run_node

COARSE_PLANE_STEP_PX = 2.0  # a sweep whose planes lie further apart than this in disparity is warned about, once


class StereoDepthNode(DepthNodeBase):
    NODE_NAME = "stereo_depth_node"
    KIND = "stereo"
    INPUTS = (
        InputSpec("left/image_rect", Image),
        InputSpec("right/image_rect", Image),
        InputSpec("left/camera_info", CameraInfo),
        InputSpec("right/camera_info", CameraInfo),
    )
    EXTRA_PARAMS = (
        ParamSpec("multiview_frames", 0, "previous left frames added as extra views (0 = the stereo pair only); "
                  "their poses come from TF in odom_frame", 0, 8),
        ParamSpec("odom_frame", "odom", "fixed frame whose TF poses the previous frames (multi-view mode)"),
    )

    def __init__(self, **kwargs: Any) -> None:
        self._history: deque[tuple[int, str, np.ndarray]] = deque(maxlen=8)  # (stamp_ns, frame_id, rgb)
        self._history_stale = False
        self.views_used = 0  # source views of the last frame: the right image plus posed previous frames
        super().__init__(**kwargs)

    @classmethod
    def config_class(cls) -> type:
        from ..pipelines.stereo import StereoPipelineConfig

        return StereoPipelineConfig

    def build_pipeline(self, config: Any) -> Any:
        from ..pipelines.stereo import StereoPipeline

        return StereoPipeline(config)

    def check_values(self, values: Mapping[str, Any], runtime: bool) -> None:
        if values["multiview_frames"] > 0 and not values["odom_frame"]:
            raise ValueError("odom_frame must name a frame when multiview_frames > 0")

    def on_values_changed(self, changed: set[str]) -> None:
        if changed & {"input_width", "input_height", "multiview_frames", "odom_frame"}:
            self._history_stale = True  # cleared by the worker, which alone iterates the history

    def prepare(self, msgs: dict[str, Any]) -> Frame:
        left_img, right_img = msgs["left/image_rect"], msgs["right/image_rect"]
        left_info, right_info = msgs["left/camera_info"], msgs["right/camera_info"]
        left, camera = self.rgb_and_camera(left_img, left_info, "left")
        right, right_camera = self.rgb_and_camera(right_img, right_info, "right")
        if right_camera.shape != camera.shape:
            raise InputFault("size", f"right image is {right_camera.width}x{right_camera.height}, left is "
                                     f"{camera.width}x{camera.height}")
        try:
            baseline = baseline_from_projections(camera_info_to_model(left_info).P,
                                                 camera_info_to_model(right_info).P)
        except (ValueError, ZeroDivisionError) as exc:
            raise InputFault("camera_info", f"no baseline from the projection matrices: {exc}") from None
        if not baseline > 0:
            raise InputFault("camera_info", f"right camera_info P gives baseline {baseline:.4f} m; expected > 0 "
                                            "(P[0, 3] = -fx * baseline for the right camera)")
        left, camera = self.resize_input(left, camera)
        right, right_camera = self.resize_input(right, right_camera)
        header = copy_header(left_img.header)
        extra = self._extra_views(header, left)
        # cx_left != cx_right is common in real rigs (image_geometry's StereoCameraModel allows it): the pipeline
        # reprojects the right image onto the left camera's intrinsics
        return Frame(header, camera, left, {"right": right, "right_camera": right_camera, "baseline": baseline,
                                            "extra_views": extra})

    def _extra_views(self, header: Any, left: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """(image, T_src_ref) of previous left frames, newest first; frames TF cannot pose are left out."""
        n = int(self.value("multiview_frames"))
        stamp = stamp_to_ns(header.stamp)
        if n == 0:
            return []
        odom = self.value("odom_frame")
        views: list[tuple[np.ndarray, np.ndarray]] = []
        if self._history_stale:
            self._history.clear()
            self._history_stale = False
        history = [h for h in self._history if h[2].shape == left.shape and h[0] < stamp]
        self._history.append((stamp, header.frame_id, left))
        while len(self._history) > n:
            self._history.popleft()
        if not history:
            return views
        try:
            T_odom_ref = self.lookup_transform(odom, header.frame_id, stamp)
            for src_stamp, src_frame, img in reversed(history[-n:]):
                T_odom_src = self.lookup_transform(odom, src_frame, src_stamp)
                views.append((img, np.linalg.inv(T_odom_src) @ T_odom_ref))
        except InputFault as fault:
            # Multi-view degrades to the stereo pair rather than dropping the frame.
            self._fault("transform", f"multi-view: {fault}; using the stereo pair alone", frame_dropped=False)
            return []
        return views

    plane_step_px: float | None = None  # the last sweep's plane spacing in pixels of disparity (a rectified pair)
    _coarse_warned: tuple | None = None

    def extra_diagnostics(self) -> dict[str, Any]:
        values: dict[str, Any] = {"source_views": self.views_used}
        if self.plane_step_px is not None:
            values["plane_step_px"] = self.plane_step_px
        return values

    def infer(self, pipeline: Any, frame: Frame) -> DepthResult:
        self.views_used = 1 + len(frame.args["extra_views"])
        result = pipeline.process(frame.rgb, frame.args["right"], frame.camera, frame.args["baseline"],
                                  extra_views=frame.args["extra_views"], right_camera=frame.args["right_camera"])
        step = result.info.get("plane_step_px")
        self.plane_step_px = None if step is None else float(step)
        self._warn_coarse_planes(pipeline)
        return result

    def _warn_coarse_planes(self, pipeline: Any) -> None:
        """Once per setting: planes more than COARSE_PLANE_STEP_PX apart leave depth steps sub-plane refinement
        does not recover (on Middlebury Aloe, 2.1 px apart, 128 planes instead of 64 cut AbsRel by 19%)."""
        step, cfg = self.plane_step_px, pipeline.config
        key = (cfg.planes, cfg.min_depth, cfg.max_depth, cfg.sweep_width, round(step, 1) if step else None)
        if step is None or step <= COARSE_PLANE_STEP_PX or key == self._coarse_warned:
            return
        self._coarse_warned = key
        want = int(np.ceil(step * (cfg.planes - 1) / COARSE_PLANE_STEP_PX)) + 1
        self.get_logger().warning(
            f"planes: {cfg.planes} planes between {cfg.min_depth:g} and {cfg.max_depth:g} m are {step:.1f} px of "
            f"disparity apart here (over {COARSE_PLANE_STEP_PX:g} px loses depth resolution): about {want} planes, "
            "or a larger min_depth, would keep them within it")


def main(args: Sequence[str] | None = None) -> None:
    run_node(StereoDepthNode, args)


if __name__ == "__main__":
    main()
