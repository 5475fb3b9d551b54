"""Resize-and-restore around a fixed-size engine: camera images and intrinsics to the engine's size, its outputs
back to the camera's pixels (NaN-aware), and sparse LiDAR depth moved without inventing or blending measurements.

All resizes use the pixel-centre convention of `PinholeCamera.scaled` (OpenCV's), so the scaled intrinsics and
the resized pixels describe the same rays.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry.camera import PinholeCamera
from ..geometry.resample import resize_image, resize_sparse_depth, source_index

RESTORE_MODES = ("nearest", "bilinear")


def reproject_to_camera(image: np.ndarray, source: PinholeCamera, target: PinholeCamera) -> np.ndarray:
    """An image taken by `source` as `target` would see it from the same centre and orientation.

    Two rectified cameras of one rig share rotation but not always intrinsics (a principal point offset, as
    Middlebury's doffs): K_t K_s^-1 maps one's pixels onto the other's exactly, so a stereo engine that takes one
    K for every view sees the source as if it had the reference's intrinsics. Pixels that fall outside are 0.
    """
    import cv2

    image = np.asarray(image)
    if image.shape[:2] != source.shape:
        raise ValueError(f"image {image.shape[:2]} does not match its camera {source.shape}")
    if np.allclose(source.K, target.K) and source.shape == target.shape:
        return image
    H = target.K @ np.linalg.inv(source.K)
    return cv2.warpPerspective(image, H, (target.width, target.height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def image_to_input(image_rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB -> float32 [1, 3, H, W] RGB / 255, the engines' image input."""
    image_rgb = np.asarray(image_rgb)
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB, got shape {image_rgb.shape}")
    scale = 255.0 if image_rgb.dtype == np.uint8 else 1.0
    return np.ascontiguousarray(image_rgb.transpose(2, 0, 1)[None], dtype=np.float32) / np.float32(scale)


def restore_map(values: np.ndarray, camera: PinholeCamera, mode: str = "nearest") -> np.ndarray:
    """An engine-sized (h, w) map back to the camera's (H, W).

    nearest keeps NaN holes and depth edges as they are (no depths invented between foreground and background);
    bilinear is smoother and NaN-aware: a pixel is the weighted mean of its valid neighbours, NaN where less than
    half of the interpolation weight is valid.
    """
    import cv2

    if mode not in RESTORE_MODES:
        raise ValueError(f"mode must be one of {RESTORE_MODES}, got {mode!r}")
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2:
        raise ValueError(f"values must be a 2-D (h, w) map, got shape {values.shape}")
    if values.shape == camera.shape:
        return values
    size = (camera.width, camera.height)
    if mode == "nearest":
        # our own gather: cv2's INTER_NEAREST is half a pixel off the pixel-centre convention, and its fixed-point
        # EXACT variant breaks ties differently from resize_sparse_depth, which must be its exact inverse
        rows = source_index(camera.height, values.shape[0])
        cols = source_index(camera.width, values.shape[1])
        return values[rows[:, None], cols[None, :]]
    valid = np.isfinite(values)
    num = cv2.resize(np.where(valid, values, 0.0).astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
    den = cv2.resize(valid.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
    out = np.full(camera.shape, np.nan, dtype=np.float32)
    ok = den >= 0.5
    out[ok] = num[ok] / den[ok]
    return out


@dataclass(frozen=True)
class EngineResize:
    """One camera mapped onto one engine size: `camera` at its own resolution, `engine_camera` at the engine's."""

    camera: PinholeCamera
    engine_camera: PinholeCamera

    @classmethod
    def for_engine(cls, camera: PinholeCamera, height: int, width: int) -> EngineResize:
        if height < 1 or width < 1:
            raise ValueError(f"engine size must be positive, got {height}x{width}")
        return cls(camera, camera.scaled(int(width), int(height)))

    @property
    def identity(self) -> bool:
        return self.camera.shape == self.engine_camera.shape

    def image(self, image: np.ndarray) -> np.ndarray:
        """A camera image at the engine's size (same dtype)."""
        image = np.asarray(image)
        if image.shape[:2] != self.camera.shape:
            raise ValueError(f"image {image.shape[:2]} does not match the camera {self.camera.shape}")
        return resize_image(image, self.engine_camera.width, self.engine_camera.height)

    def image_input(self, image_rgb: np.ndarray) -> np.ndarray:
        """uint8 RGB camera image -> the engine's float32 [1, 3, h, w] RGB / 255 input."""
        return image_to_input(self.image(image_rgb))

    def intrinsics(self) -> np.ndarray:
        """K (3, 3) float64 at the engine's size."""
        return self.engine_camera.K

    def intrinsics_input(self) -> np.ndarray:
        """K at the engine's size as the stereo engine's `intrinsics` input: float32 [1, 3, 3]."""
        return self.engine_camera.K[None].astype(np.float32)

    def sparse_depth_input(self, sparse: np.ndarray) -> np.ndarray:
        """Camera-sized sparse depth (0 = none) as the completion engine's `sparse_depth` input [1, 1, h, w]."""
        return self.sparse_depth(sparse)[None, None].astype(np.float32)

    def sparse_depth(self, sparse: np.ndarray) -> np.ndarray:
        if np.asarray(sparse).shape != self.camera.shape:
            raise ValueError(f"sparse depth {np.asarray(sparse).shape} does not match the camera {self.camera.shape}")
        return resize_sparse_depth(sparse, self.engine_camera.width, self.engine_camera.height)

    def restore(self, values: np.ndarray, mode: str = "nearest") -> np.ndarray:
        """An engine output (h, w), or (1, 1, h, w) / (1, h, w), back to the camera's (H, W)."""
        values = np.asarray(values)
        while values.ndim > 2 and values.shape[0] == 1:
            values = values[0]
        return restore_map(values, self.camera, mode)

    def restore_channels(self, values: np.ndarray, mode: str = "nearest") -> np.ndarray:
        """A multi-channel output (C, h, w) or (1, C, h, w), e.g. normals, -> (H, W, C)."""
        values = np.asarray(values)
        if values.ndim == 4:
            values = values[0]
        return np.stack([restore_map(c, self.camera, mode) for c in values], axis=-1)


def keeps_aspect(camera: PinholeCamera, height: int, width: int, tolerance: float = 0.1) -> bool:
    """Whether resizing the camera to the engine's size squashes it by at most `tolerance` (KITTI's 1242x375 into
    640x192: 0.7%; Middlebury's 741x500 into 640x192: 2.6x)."""
    ratio = (camera.width / camera.height) / (width / height)
    return abs(np.log(ratio)) <= np.log1p(tolerance)


@dataclass(frozen=True)
class EngineTiles:
    """A fully convolutional engine of a fixed size run on overlapping tiles of a camera image, aspect kept.

    The image is scaled uniformly (`scaled`: the smallest size that covers a tile in both directions: one
    side equals the engine's), cut into tiles that overlap by at least `overlap` of a tile, and the tiles'
    outputs are blended with weights that fall towards each tile's border, so no seam shows.
    """

    camera: PinholeCamera
    scaled: PinholeCamera
    tile_height: int
    tile_width: int
    origins: tuple[tuple[int, int], ...]  # (row, column) of each tile's top-left pixel in `scaled`

    @classmethod
    def for_engine(cls, camera: PinholeCamera, height: int, width: int, overlap: float = 0.25,
                   scale: float = 0.0) -> EngineTiles:
        """`scale`: scale the image by this much if that still covers a tile (0: the smallest cover)."""
        if height < 1 or width < 1:
            raise ValueError(f"engine size must be positive, got {height}x{width}")
        s = max(width / camera.width, height / camera.height, scale)
        sw, sh = max(width, round(camera.width * s)), max(height, round(camera.height * s))

        def starts(size: int, tile: int) -> list[int]:
            if size <= tile:
                return [0]
            n = int(np.ceil((size - tile) / (tile * (1.0 - overlap)))) + 1
            return [round(i * (size - tile) / (n - 1)) for i in range(n)]

        origins = tuple((y, x) for y in starts(sh, height) for x in starts(sw, width))
        return cls(camera, camera.scaled(sw, sh), int(height), int(width), origins)

    @classmethod
    def squashed(cls, camera: PinholeCamera, height: int, width: int) -> EngineTiles:
        """The plain resize as a layout of one tile: the whole camera image resized to the engine's size."""
        if height < 1 or width < 1:
            raise ValueError(f"engine size must be positive, got {height}x{width}")
        return cls(camera, camera.scaled(int(width), int(height)), int(height), int(width), ((0, 0),))

    def crops(self, values: np.ndarray) -> list[np.ndarray]:
        """A `scaled`-sized (h, w[, C]) array cut into the tiles."""
        h, w = self.tile_height, self.tile_width
        return [values[y:y + h, x:x + w] for y, x in self.origins]

    def window(self) -> np.ndarray:
        """Blend weights of one tile: a raised cosine from 0.05 at the border to 1 in the middle."""
        def ramp(n: int) -> np.ndarray:
            return 0.05 + 0.95 * np.sin(np.pi * (np.arange(n) + 0.5) / n) ** 2
        return np.outer(ramp(self.tile_height), ramp(self.tile_width)).astype(np.float32)

    def blend(self, tiles: list[np.ndarray]) -> np.ndarray:
        """The tiles' (h, w) outputs (any leading 1-dims) as one `scaled`-sized map (NaN-aware weighted mean)."""
        out = np.zeros(self.scaled.shape, np.float64)
        weight = np.zeros(self.scaled.shape, np.float64)
        win = self.window()
        h, w = self.tile_height, self.tile_width
        for (y, x), tile in zip(self.origins, tiles, strict=True):
            tile = np.asarray(tile, np.float64).reshape(h, w)
            ok = np.isfinite(tile)
            out[y:y + h, x:x + w] += np.where(ok, tile, 0.0) * win * ok
            weight[y:y + h, x:x + w] += win * ok
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(weight > 0, out / weight, np.nan).astype(np.float32)
