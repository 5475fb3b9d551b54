"""The depth nodes' inputs: what a synchronized set of messages becomes (Frame), the faults a bad input raises
(InputFault), the subscriptions, and the message-to-array conversions the nodes share."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from ..geometry.camera import PinholeCamera
from ..geometry.resample import resize_image
from ..ros.camera_info import camera_info_to_model
from ..ros.image import image_to_rgb
from ..ros.qos import qos_from_params


class InputFault(Exception):
    """A frame that cannot be processed; `cause` groups warnings for throttling and diagnostics."""

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause


@dataclass(frozen=True)
class InputSpec:
    key: str  # the relative topic name, remappable (image_pipeline names)
    msg_type: type


@dataclass
class Frame:
    """What `prepare` hands to `infer`: the output header, the (resized) camera and image, pipeline arguments."""

    header: Header
    camera: PinholeCamera
    rgb: np.ndarray
    args: dict[str, Any]


def copy_header(header: Header, frame_id: str | None = None) -> Header:
    out = Header()
    out.stamp = header.stamp
    out.frame_id = header.frame_id if frame_id is None else frame_id
    return out


class InputsMixin:
    """Subscriptions (QoS from the parameters, re-made when they change) and the input conversions.

    State lives on DepthNodeBase (its __init__ makes it); this class only groups one job's methods.
    """

    def _make_subscriptions(self) -> None:
        qos = qos_from_params(self._values["qos_reliability"], self._values["qos_depth"])
        with self._lock:
            old = list(self._subscriptions_by_key.values())
            self._subscriptions_by_key = {}
        for sub in old:
            self.destroy_subscription(sub)
        subs = {}
        for spec in self.INPUTS:
            subs[spec.key] = self.create_subscription(
                spec.msg_type, spec.key, lambda msg, key=spec.key: self._on_input(key, msg), qos)
        with self._lock:
            self._subscriptions_by_key = subs

    def _on_input(self, key: str, msg: Any) -> None:
        self.input_rates[key].tick()
        self._sync.add(key, msg)

    def rgb_and_camera(self, image: Image, info: CameraInfo, label: str) -> tuple[np.ndarray, PinholeCamera]:
        """Image + CameraInfo -> (uint8 RGB, rectified camera), checked against each other; InputFault if not."""
        try:
            rgb = image_to_rgb(image)
        except (ValueError, KeyError, TypeError) as exc:
            raise InputFault("image", f"{label} image: {exc}") from None
        try:
            camera = camera_info_to_model(info).pinhole()
        except (ValueError, KeyError, TypeError) as exc:
            raise InputFault("camera_info", f"{label} camera_info: {exc}") from None
        if rgb.shape[:2] != camera.shape:
            raise InputFault("size", f"{label} image is {rgb.shape[1]}x{rgb.shape[0]} but its camera_info says "
                                     f"{camera.width}x{camera.height}")
        return rgb, camera

    def output_size(self, camera: PinholeCamera) -> tuple[int, int]:
        w, h = self._values["input_width"], self._values["input_height"]
        return int(w) or camera.width, int(h) or camera.height

    def resize_input(self, rgb: np.ndarray, camera: PinholeCamera) -> tuple[np.ndarray, PinholeCamera]:
        """To the input_width x input_height parameters (intrinsics scaled with the image)."""
        w, h = self.output_size(camera)
        if (w, h) == (camera.width, camera.height):
            return rgb, camera
        return resize_image(rgb, w, h), camera.scaled(w, h)

    def lookup_transform(self, target: str, source: str, stamp_ns: int) -> np.ndarray:
        """T_target_source from TF at the stamp (identity for equal frames); InputFault naming what is missing."""
        if not target or not source:
            raise InputFault("transform", f"empty frame id (target {target!r}, source {source!r})")
        if target == source:
            return np.eye(4)
        try:
            return np.asarray(self.tf.lookup(target, source, stamp_ns), np.float64)
        except Exception as exc:  # LookupError from our buffer, tf2 exceptions from tf2_ros
            raise InputFault("transform", f"no transform {source} -> {target} at {stamp_ns * 1e-9:.3f} s: "
                                          f"{exc}") from None
