"""Back-projection of depth images and projection of 3-D points, with a z-buffer; depth <-> disparity.

Conventions: dense depth is float32 metres with NaN (or 0 where stated) for unknown; sparse depth from
LiDAR uses 0 for "no measurement", as KITTI's depth-completion PNGs do. Points are in the camera
optical frame. The torch twins (`backproject_torch`, `project_torch`) serve training and are tested equal.
"""
from __future__ import annotations

import numpy as np

from .camera import PinholeCamera
from .compiled import compiled_or


def pixel_grid(height: int, width: int, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (u, v), each (H, W)."""
    u = np.arange(width, dtype=dtype)[None, :].repeat(height, 0)
    v = np.arange(height, dtype=dtype)[:, None].repeat(width, 1)
    return u, v


_RAY_CACHE: dict[PinholeCamera, tuple[np.ndarray, np.ndarray]] = {}


def pixel_rays(camera: PinholeCamera) -> tuple[np.ndarray, np.ndarray]:
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
    rx, ry = pixel_rays(camera)
    z = depth.astype(np.float32, copy=False)
    out = np.empty(depth.shape + (3,), dtype=np.float32)
    np.multiply(rx, z, out=out[..., 0])
    np.multiply(ry, z, out=out[..., 1])
    out[..., 2] = z
    return out


def _cloud_into_numpy(depth: np.ndarray, rx: np.ndarray, ry: np.ndarray, rgb: np.ndarray, out: np.ndarray) -> int:
    """The numpy twin of the compiled `_cloud_into`: `out` (H, W, S) float32, S = 3 or 4 (4: packed rgb)."""
    with np.errstate(invalid="ignore"):
        valid = (depth > 0) & (depth < np.inf)  # False for NaN
    z = out[..., 2]
    np.copyto(z, depth, casting="unsafe")
    z[~valid] = np.nan
    np.multiply(rx, z, out=out[..., 0])
    np.multiply(ry, z, out=out[..., 1])
    if out.shape[2] == 4 and rgb.shape[0]:
        bits = out.view(np.uint32)[..., 3]
        np.left_shift(rgb[..., 0], 16, out=bits, dtype=np.uint32)
        bits |= rgb[..., 1].astype(np.uint32) << 8
        bits |= rgb[..., 2]
    return int(valid.sum())


def _cloud_into_loops(depth: np.ndarray, rx: np.ndarray, ry: np.ndarray, rgb: np.ndarray, out: np.ndarray) -> int:
    """One pass over the pixels, writing each point's x, y, z (NaN where depth is not a positive finite number)
    and, where `out` has a fourth channel and rgb is given, the colour packed as 0x00RRGGBB; the number of valid
    points."""
    h, w, s = out.shape
    bits = out.view(np.uint32)
    colour = s == 4 and rgb.shape[0] > 0
    nan = np.float32(np.nan)
    count = 0
    for y in range(h):
        for x in range(w):
            d = depth[y, x]
            if d > 0 and d < np.inf:
                z = np.float32(d)
                out[y, x, 0] = rx[y, x] * z
                out[y, x, 1] = ry[y, x] * z
                out[y, x, 2] = z
                count += 1
            else:
                out[y, x, 0] = nan
                out[y, x, 1] = nan
                out[y, x, 2] = nan
            if colour:
                r, g, b = np.uint32(rgb[y, x, 0]), np.uint32(rgb[y, x, 1]), np.uint32(rgb[y, x, 2])
                bits[y, x, 3] = (r << 16) | (g << 8) | b
    return count


_cloud_into = compiled_or(_cloud_into_loops, _cloud_into_numpy)  # numba where installed (geometry.compiled)


def backproject_into(depth: np.ndarray, camera: PinholeCamera, out: np.ndarray, rgb: np.ndarray | None = None) -> int:
    """Depth (H, W) metres -> the points written into `out` (H, W, S) float32, a view of a point cloud's
    buffer: x, y, z in channels 0-2 (NaN where depth is unknown: NaN, inf, <= 0) and, with uint8 (H, W, 3)
    `rgb` and S = 4, the colour as 0x00RRGGBB bits in channel 3 (depth_image_proc's and PCL's packing). One
    compiled pass: numpy's strided writes into an interleaved buffer cost 1.5 ms a channel at KITTI size.
    Returns the number of valid points."""
    h, w = camera.shape
    if depth.shape != (h, w) or out.shape[:2] != (h, w) or out.shape[2] not in (3, 4) or out.dtype != np.float32:
        raise ValueError(f"depth {depth.shape} and out {out.shape} {out.dtype} must be ({h}, {w}) and "
                         f"({h}, {w}, 3 or 4) float32")
    if rgb is not None and (rgb.shape != (h, w, 3) or rgb.dtype != np.uint8):
        raise ValueError(f"rgb must be uint8 ({h}, {w}, 3), got {rgb.dtype} {rgb.shape}")
    rx, ry = pixel_rays(camera)
    empty = np.zeros((0, 0, 3), np.uint8)
    return int(_cloud_into(np.asarray(depth), rx, ry, empty if rgb is None else rgb, out))


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
    depth image a LiDAR makes. Points behind `min_depth` (and always those at z <= 0) or beyond `max_depth`
    are dropped.
    """
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 2 or points.shape[1] < 3:
        raise ValueError(f"points must be (N, 3), got shape {points.shape}")
    if values is not None:
        values = np.asarray(values, dtype=np.float32).reshape(-1)
        if values.shape[0] != points.shape[0]:
            raise ValueError(f"values has {values.shape[0]} entries for {points.shape[0]} points")
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    # Project every point and test the frustum on the projections: cheaper than gathering the rows in front first.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inv_z = np.float32(1.0) / z
        u = np.multiply(x, np.float32(camera.fx))
        u *= inv_z
        u += np.float32(camera.cx)
        u += np.float32(0.5)
        v = np.multiply(y, np.float32(camera.fy))
        v *= inv_z
        v += np.float32(camera.cy)
        v += np.float32(0.5)
    ok = z > max(float(min_depth), 0.0)  # z > 0 also keeps the depth bits below ordered as unsigned ints
    ok &= z < max_depth
    ok &= u >= 0
    ok &= u < camera.width
    ok &= v >= 0
    ok &= v < camera.height
    sel = np.flatnonzero(ok)
    pix = v[sel].astype(np.int64)
    pix *= camera.width
    pix += u[sel].astype(np.int64)  # u, v >= 0 here, so truncation is floor(u + 0.5): the nearest pixel
    # Z-buffer by one sort of a packed key: pixel index in the high 32 bits, the depth's float32 bits (ordered
    # like the depths themselves, as z > 0) in the low 32; the first key of each pixel is its nearest point.
    key = pix.astype(np.uint64)
    key <<= np.uint64(32)
    key |= z[sel].view(np.uint32)
    if values is None:
        key.sort()
    else:
        order = np.argsort(key)
        key = key[order]
    pix_sorted = (key >> np.uint64(32)).astype(np.intp)
    first = np.empty(pix_sorted.shape, dtype=bool)
    first[:1] = True
    np.not_equal(pix_sorted[1:], pix_sorted[:-1], out=first[1:])
    out = np.zeros(camera.height * camera.width, dtype=np.float32)
    if values is None:
        out[pix_sorted[first]] = (key[first] & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.float32)
    else:
        out[pix_sorted[first]] = values[sel[order[first]]]
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


def backproject_torch(depth, inv_K):
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


def project_torch(points, K, T=None, eps: float = 1e-7):
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


def pixels_to_grid(uv, height: int, width: int):
    """Pixel coordinates (B, H, W, 2) -> `grid_sample` coordinates in [-1, 1] (align_corners=False)."""
    import torch

    scale = torch.tensor([2.0 / width, 2.0 / height], dtype=uv.dtype, device=uv.device)
    return (uv + 0.5) * scale - 1.0
