"""Pinhole camera model: intrinsics, resizing and cropping, KITTI projection matrices."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class PinholeCamera:
    """An ideal (rectified) pinhole camera in the optical frame: z forward, x right, y down (REP 103)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"camera size must be positive, got width={self.width} height={self.height}")
        if not (self.fx > 0 and self.fy > 0):
            raise ValueError(f"focal lengths must be positive, got fx={self.fx} fy={self.fy}")

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width), the numpy image shape."""
        return (self.height, self.width)

    @classmethod
    def from_K(cls, K: np.ndarray, width: int, height: int) -> PinholeCamera:
        K = np.asarray(K, dtype=np.float64).reshape(3, 3)
        return cls(int(width), int(height), float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]))

    @classmethod
    def from_projection(cls, P: np.ndarray, width: int, height: int) -> PinholeCamera:
        """From a 3x4 rectified projection matrix (KITTI P_rect_0X, CameraInfo.P)."""
        P = np.asarray(P, dtype=np.float64).reshape(3, 4)
        return cls.from_K(P[:, :3], width, height)

    def scaled(self, width: int, height: int) -> PinholeCamera:
        """The same camera seen at another resolution (an image resize, pixel-centre convention)."""
        sx, sy = width / self.width, height / self.height
        return PinholeCamera(
            int(width), int(height), self.fx * sx, self.fy * sy,
            (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5,
        )

    def cropped(self, x0: int, y0: int, width: int, height: int) -> PinholeCamera:
        """The camera of the crop [y0:y0+height, x0:x0+width]."""
        if x0 < 0 or y0 < 0 or x0 + width > self.width or y0 + height > self.height:
            raise ValueError(
                f"crop ({x0}, {y0}, {width}x{height}) does not fit in the {self.width}x{self.height} image"
            )
        return replace(self, width=int(width), height=int(height), cx=self.cx - x0, cy=self.cy - y0)


def baseline_from_projections(P_left: np.ndarray, P_right: np.ndarray) -> float:
    """Stereo baseline in metres from two rectified projection matrices: P[0, 3] = -fx * Tx (KITTI, ROS)."""
    P_left = np.asarray(P_left, dtype=np.float64).reshape(3, 4)
    P_right = np.asarray(P_right, dtype=np.float64).reshape(3, 4)
    return float((P_left[0, 3] - P_right[0, 3]) / P_right[0, 0])
