"""mono_depth_node: one camera image + camera_info -> metric depth from a monocular engine.

Inputs (relative, remappable): image_rect, camera_info. A metric engine gives metres directly; a relative one is
scaled by the pipeline from the `camera_height` parameter (the camera's height above a flat ground).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sensor_msgs.msg import CameraInfo, Image

from ..pipelines.base import DepthResult
from .base import DepthNodeBase, Frame, InputSpec, copy_header
from .process import run_node


class MonoDepthNode(DepthNodeBase):
    NODE_NAME = "mono_depth_node"
    KIND = "mono"
    INPUTS = (
        InputSpec("image_rect", Image),
        InputSpec("camera_info", CameraInfo),
    )
    @classmethod
    def config_class(cls) -> type:
        from ..pipelines.mono import MonoPipelineConfig

        return MonoPipelineConfig

    def build_pipeline(self, config: Any) -> Any:
        from ..pipelines.mono import MonoPipeline

        return MonoPipeline(config)

    def prepare(self, msgs: dict[str, Any]) -> Frame:
        image = msgs["image_rect"]
        rgb, camera = self.rgb_and_camera(image, msgs["camera_info"], "camera")
        rgb, camera = self.resize_input(rgb, camera)
        return Frame(copy_header(image.header), camera, rgb, {})

    def infer(self, pipeline: Any, frame: Frame) -> DepthResult:
        return pipeline.process(frame.rgb, frame.camera)


def main(args: Sequence[str] | None = None) -> None:
    run_node(MonoDepthNode, args)


if __name__ == "__main__":
    main()
