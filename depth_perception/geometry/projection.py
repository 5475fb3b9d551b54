"""Back-projection of depth images and projection of 3-D points, with a z-buffer; depth <-> disparity.

Conventions: dense depth is float32 metres with NaN (or 0 where stated) for unknown; sparse depth from
LiDAR uses 0 for "no measurement", as KITTI's depth-completion PNGs do. Points are in the camera
optical frame. The torch twins (`backproject_torch`, `project_torch`) serve training and are tested equal.
"""
from __future__ import annotations

import numpy as np

from .camera import PinholeCamera


def pixel_grid(height: int, width: int, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (u, v), each (H, W)."""
    u = np.arange(width, dtype=dtype)[None, :].repeat(height, 0)
    v = np.arange(height, dtype=dtype)[:, None].repeat(width, 1)
    return u, v


_RAY_CACHE: dict[PinholeCamera, tuple[np.ndarray, np.ndarray]] = {}


def _rays(camera: PinholeCamera) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel (x/z, y/z), cached per camera: the same camera is back-projected every frame."""
    rays = _RAY_CACHE.get(camera)
    if rays is None:
        u, v = pixel_grid(camera.height, camera.width)
        rays = ((u - camera.cx) / camera.fx).astype(np.float32), ((v - camera.cy) / camera.fy).astype(np.float32)
        if len(_RAY_CACHE) > 16:
            _RAY_CACHE.clear()
        _RAY_CACHE[camera] = rays
    return rays


def backproject(depth: np.ndarray, camera: PinholeCamera) -> np.ndarray:
    """Depth (H, W) in metres -> organized points (H, W, 3) float32; invalid depth stays NaN / 0 in z."""
    depth = np.asarray(depth)
    if depth.shape != camera.shape:
        raise ValueError(f"depth shape {depth.shape} does not match camera {camera.shape}")
    rx, ry = _rays(camera)
    z = depth.astype(np.float32, copy=False)
    out = np.empty(depth.shape + (3,), dtype=np.float32)
    np.multiply(rx, z, out=out[..., 0])
    np.multiply(ry, z, out=out[..., 1])
    out[..., 2] = z
    return out


def project_points(points: np.ndarray, camera: PinholeCamera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points (N, 3) in the optical frame -> (u, v, z) float arrays; no visibility test."""
    points = np.asarray(points)
    z = points[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = camera.fx * points[:, 0] / z + camera.cx
        v = camera.fy * points[:, 1] / z + camera.cy
    return u, v, z


def points_to_sparse_depth(
    points: np.ndarray,
    camera: PinholeCamera,
    min_depth: float = 0.1,
    max_depth: float = float("inf"),
    values: np.ndarray | None = None,
) -> np.ndarray:
    """Project points (N, 3) in the camera frame into an (H, W) float32 image, nearest point winning.

    Returns depth (or `values` of the winning point, if given) with 0 where no point landed: the sparse
    depth image a LiDAR makes. Points behind `min_depth` or beyond `max_depth` are dropped.
    """
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 2 or points.shape[1] < 3:
        raise ValueError(f"points must be (N, 3), got shape {points.shape}")
    z = points[:, 2]
    keep = (z > min_depth) & (z < max_depth)
    pts = points[keep]
    z = pts[:, 2]
    inv_z = 1.0 / z
    u = np.floor(camera.fx * pts[:, 0] * inv_z + camera.cx + 0.5).astype(np.int64)
    v = np.floor(camera.fy * pts[:, 1] * inv_z + camera.cy + 0.5).astype(np.int64)
    inside = (u >= 0) & (u < camera.width) & (v >= 0) & (v < camera.height)
    idx = v[inside] * camera.width + u[inside]
    z = z[inside]
    # Z-buffer: sort far-to-near by a combined key so the first hit per pixel after a stable sort is the nearest.
    order = np.lexsort((z, idx))
    idx_sorted = idx[order]
    first = np.ones(idx_sorted.shape, dtype=bool)
    first[1:] = idx_sorted[1:] != idx_sorted[:-1]
    winners = order[first]
    out = np.zeros(camera.height * camera.width, dtype=np.float32)
    src = z if values is None else np.asarray(values, dtype=np.float32)[keep][inside]
    out[idx[winners]] = src[winners]
    return out.reshape(camera.shape)


def depth_to_disparity(depth: np.ndarray, fx: float, baseline: float) -> np.ndarray:
    """Disparity in pixels = fx * baseline / depth; 0 or NaN depth gives NaN."""
    depth = np.asarray(depth, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        disp = np.float32(fx * baseline) / depth
    disp[~np.isfinite(disp) | (depth <= 0)] = np.nan
    return disp


def disparity_to_depth(disparity: np.ndarray, fx: float, baseline: float) -> np.ndarray:
    """Depth in metres = fx * baseline / disparity; non-positive disparity gives NaN."""
    disparity = np.asarray(disparity, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.float32(fx * baseline) / disparity
    depth[~(disparity > 0)] = np.nan
    return depth


def backproject_torch(depth, inv_K):  # type: ignore[no-untyped-def]  # noqa: N803
    """Torch twin of `backproject`: depth (B, 1, H, W), inv_K (B, 3, 3) -> points (B, 3, H, W)."""
    import torch

    b, _, h, w = depth.shape
    v, u = torch.meshgrid(
        torch.arange(h, dtype=depth.dtype, device=depth.device),
        torch.arange(w, dtype=depth.dtype, device=depth.device),
        indexing="ij",
    )
    pix = torch.stack([u, v, torch.ones_like(u)], 0).view(1, 3, -1).expand(b, 3, h * w)
    rays = inv_K.to(depth.dtype) @ pix
    return (rays * depth.view(b, 1, -1)).view(b, 3, h, w)


def project_torch(points, K, T=None, eps: float = 1e-7):  # type: ignore[no-untyped-def]  # noqa: N803
    """Torch twin of `project_points`: points (B, 3, H, W), K (B, 3, 3), optional T (B, 4, 4) applied first.

    Returns pixel coordinates (B, H, W, 2) and depth (B, 1, H, W) in the target camera.
    """
    b, _, h, w = points.shape
    p = points.view(b, 3, -1)
    if T is not None:
        p = T[:, :3, :3] @ p + T[:, :3, 3:4]
    cam = K @ p
    z = cam[:, 2:3]
    uv = cam[:, :2] / (z + eps)
    return uv.view(b, 2, h, w).permute(0, 2, 3, 1), z.view(b, 1, h, w)


def pixels_to_grid(uv, height: int, width: int):  # type: ignore[no-untyped-def]
    """Pixel coordinates (B, H, W, 2) -> `grid_sample` coordinates in [-1, 1] (align_corners=False)."""
    import torch

    scale = torch.tensor([2.0 / width, 2.0 / height], dtype=uv.dtype, device=uv.device)
    return (uv + 0.5) * scale - 1.0
