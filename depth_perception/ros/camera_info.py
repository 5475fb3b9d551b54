"""sensor_msgs/CameraInfo <-> CameraModel (K, D, R, P, distortion, binning, ROI) and the rectified PinholeCamera."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sensor_msgs.msg import CameraInfo, RegionOfInterest

from ..geometry.camera import PinholeCamera

# Coefficient counts of the models whose length is fixed by their definition (an empty D means "no distortion").
_D_LENGTHS = {"plumb_bob": (5,), "equidistant": (4,), "rational_polynomial": (8,)}


@dataclass(frozen=True)
class Roi:
    """sensor_msgs/RegionOfInterest: the window of the full-resolution image that the camera sends (0 size = all)."""

    x_offset: int = 0
    y_offset: int = 0
    height: int = 0
    width: int = 0
    do_rectify: bool = False

    def __post_init__(self) -> None:
        for name in ("x_offset", "y_offset", "height", "width"):
            if getattr(self, name) < 0:
                raise ValueError(f"roi.{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True, eq=False)
class CameraModel:
    """Everything a CameraInfo says, as numpy arrays: K (3x3), D (n,), R (3x3), P (3x4), binning, ROI."""

    width: int
    height: int
    K: np.ndarray
    D: np.ndarray = field(default_factory=lambda: np.zeros(5))
    R: np.ndarray = field(default_factory=lambda: np.eye(3))
    P: np.ndarray = field(default_factory=lambda: np.zeros((3, 4)))
    distortion_model: str = "plumb_bob"
    binning_x: int = 0
    binning_y: int = 0
    roi: Roi = field(default_factory=Roi)

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"camera has zero size: width={self.width} height={self.height}")
        for name, shape in (("K", (3, 3)), ("R", (3, 3)), ("P", (3, 4))):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.size != shape[0] * shape[1]:
                raise ValueError(f"{name} must have {shape[0] * shape[1]} entries, got {value.size}")
            object.__setattr__(self, name, value.reshape(shape))
        object.__setattr__(self, "D", np.asarray(self.D, dtype=np.float64).reshape(-1))
        allowed = _D_LENGTHS.get(self.distortion_model)
        if allowed is not None and self.D.size not in allowed + (0,):
            raise ValueError(
                f"D has {self.D.size} coefficients, but distortion_model {self.distortion_model!r} takes {allowed[0]}"
            )
        for name in ("binning_x", "binning_y"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not np.isfinite(self.K).all() or not np.isfinite(self.P).all():
            raise ValueError("K and P must be finite")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CameraModel):
            return NotImplemented
        return (
            (self.width, self.height, self.distortion_model, self.binning_x, self.binning_y, self.roi)
            == (other.width, other.height, other.distortion_model, other.binning_x, other.binning_y, other.roi)
            and all(np.array_equal(getattr(self, n), getattr(other, n)) for n in ("K", "D", "R", "P"))
        )

    __hash__ = None  # mutable arrays inside

    def pinhole(self) -> PinholeCamera:
        """The rectified camera (from P; from K where P is all zero, as an uncalibrated driver sends), at the size
        and pixel grid of the images that arrive: ROI window first, then binning (image_geometry's convention)."""
        M = self.P[:, :3] if self.P.any() else self.K
        if not (M[0, 0] > 0 and M[1, 1] > 0):
            raise ValueError(f"camera has no focal length: P and K give fx={M[0, 0]} fy={M[1, 1]}")
        fx, fy, cx, cy = M[0, 0], M[1, 1], M[0, 2], M[1, 2]
        width, height = self.width, self.height
        if self.roi.width > 0 and self.roi.height > 0:
            cx, cy = cx - self.roi.x_offset, cy - self.roi.y_offset
            width, height = self.roi.width, self.roi.height
        bx, by = max(self.binning_x, 1), max(self.binning_y, 1)
        return PinholeCamera(width // bx, height // by, fx / bx, fy / by, cx / bx, cy / by)


def camera_info_to_model(msg: CameraInfo) -> CameraModel:
    """CameraInfo -> CameraModel; ValueError naming the field for a zero size or a D that does not fit its model."""
    roi = msg.roi
    return CameraModel(
        width=int(msg.width), height=int(msg.height),
        K=np.asarray(msg.k, dtype=np.float64), D=np.asarray(msg.d, dtype=np.float64),
        R=np.asarray(msg.r, dtype=np.float64), P=np.asarray(msg.p, dtype=np.float64),
        distortion_model=str(msg.distortion_model), binning_x=int(msg.binning_x), binning_y=int(msg.binning_y),
        roi=Roi(int(roi.x_offset), int(roi.y_offset), int(roi.height), int(roi.width), bool(roi.do_rectify)),
    )


def model_to_camera_info(model: CameraModel, header: Any = None) -> CameraInfo:
    """CameraModel -> CameraInfo with every field set."""
    msg = CameraInfo()
    if header is not None:
        msg.header = header
    msg.width, msg.height = int(model.width), int(model.height)
    msg.distortion_model = model.distortion_model
    msg.d = [float(x) for x in model.D]
    msg.k = model.K.reshape(-1).astype(np.float64)
    msg.r = model.R.reshape(-1).astype(np.float64)
    msg.p = model.P.reshape(-1).astype(np.float64)
    msg.binning_x, msg.binning_y = int(model.binning_x), int(model.binning_y)
    r = model.roi
    msg.roi = RegionOfInterest(x_offset=r.x_offset, y_offset=r.y_offset, height=r.height, width=r.width,
                               do_rectify=r.do_rectify)
    return msg


def pinhole_model(camera: PinholeCamera) -> CameraModel:
    """The CameraModel of an ideal rectified camera: no distortion, R = I, P = [K | 0]."""
    P = np.zeros((3, 4))
    P[:, :3] = camera.K
    return CameraModel(camera.width, camera.height, K=camera.K, D=np.zeros(5), R=np.eye(3), P=P)


def pinhole_to_camera_info(camera: PinholeCamera, header: Any = None) -> CameraInfo:
    """PinholeCamera -> CameraInfo (plumb_bob with zero coefficients, R = I, P = [K | 0])."""
    return model_to_camera_info(pinhole_model(camera), header)
