"""What every depth pipeline returns, and the one colormap used for pictures and `depth/colorized`."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..geometry.camera import PinholeCamera


@dataclass
class DepthResult:
    """Dense depth in the camera's pixels: float32 metres, NaN where unknown (REP 118)."""

    depth: np.ndarray
    confidence: np.ndarray
    camera: PinholeCamera
    timings_ms: dict[str, float] = field(default_factory=dict)
    normals: np.ndarray | None = None
    info: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.depth.shape != self.camera.shape or self.confidence.shape != self.camera.shape:
            raise ValueError(
                f"depth {self.depth.shape} and confidence {self.confidence.shape} "
                f"must match the camera {self.camera.shape}"
            )


def _turbo_lut() -> np.ndarray:
    # Google's Turbo colormap as a polynomial fit (Mikhailov 2019), sampled once into a 256-entry table.
    x = np.linspace(0.0, 1.0, 256)
    r = 0.13572138 + x * (4.61539260 + x * (-42.66032258 + x * (132.13108234 + x * (-152.94239396 + x * 59.28637943))))
    g = 0.09140261 + x * (2.19418839 + x * (4.84296658 + x * (-14.18503333 + x * (4.27729857 + x * 2.82956604))))
    b = 0.10667330 + x * (12.64194608 + x * (-60.58204836 + x * (110.36276771 + x * (-89.90310912 + x * 27.34824973))))
    return (np.clip(np.stack([r, g, b], 1), 0, 1) * 255).astype(np.uint8)


TURBO = _turbo_lut()


def colorize_depth(
    depth: np.ndarray, min_depth: float = 1.0, max_depth: float = 80.0, inverse: bool = True
) -> np.ndarray:
    """Depth (H, W) metres -> rgb8 (H, W, 3) with a fixed range, so colours mean the same depth in every frame.

    Near is red, far is blue (inverse depth spreads the colours over the near range, where detail is);
    NaN and non-positive depth are black.
    """
    d = np.asarray(depth, dtype=np.float32)
    valid = np.isfinite(d) & (d > 0)
    dc = np.clip(np.where(valid, d, max_depth), min_depth, max_depth)
    if inverse:
        t = (1.0 / dc - 1.0 / max_depth) / (1.0 / min_depth - 1.0 / max_depth)
    else:
        t = 1.0 - (dc - min_depth) / (max_depth - min_depth)
    rgb = TURBO[np.clip((t * 255).astype(np.int32), 0, 255)]
    rgb[~valid] = 0
    return rgb
