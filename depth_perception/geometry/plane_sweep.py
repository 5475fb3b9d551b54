"""Plane-sweep geometry: fronto-parallel depth planes and the homographies that warp a source view onto them.

One definition shared by the classical sweep (numpy / OpenCV) and the learned sweep (torch, exported to
ONNX). Planes are sampled uniformly in inverse depth (DPSNet, "Normal Assisted Stereo Depth Estimation"),
so plane index is proportional to disparity in a rectified pair: index 0 is the far plane (`max_depth`),
index L-1 the near plane (`min_depth`).

For the plane z = d of the reference camera (normal n = (0, 0, 1), n^T X = d) and a source camera with
`T_src_ref = [R | t]`, a reference point X on the plane lands at X_src = R X + t (n^T X) / d, so the
homography from reference pixels to source pixels is

    H_l = K_src (R + t n^T / d_l) K_ref^-1

(the seed writes R - t n^T / d with the normal pointing towards the camera; the same matrix). A rectified
pair with the right camera as source is the special case R = I, t = (-baseline, 0, 0): H_l shifts the
reference pixel left by the disparity fx * baseline / d_l.
"""
from __future__ import annotations

import numpy as np


def _check_range(min_depth: float, max_depth: float, num_planes: int) -> None:
    if not (min_depth > 0):
        raise ValueError(f"min_depth must be > 0, got {min_depth}")
    if not (max_depth > min_depth):
        raise ValueError(f"max_depth must be > min_depth ({min_depth}), got {max_depth}")
    if int(num_planes) < 2:
        raise ValueError(f"num_planes must be >= 2, got {num_planes}")


def plane_inverse_depths(min_depth: float, max_depth: float, num_planes: int) -> np.ndarray:
    """(L,) float64 inverse depths, uniform from 1/max_depth (index 0) to 1/min_depth (index L-1)."""
    _check_range(min_depth, max_depth, num_planes)
    return np.linspace(1.0 / max_depth, 1.0 / min_depth, int(num_planes))


def plane_depths(min_depth: float, max_depth: float, num_planes: int) -> np.ndarray:
    """(L,) float64 plane depths in metres, far to near, uniform in inverse depth."""
    return 1.0 / plane_inverse_depths(min_depth, max_depth, num_planes)


def plane_index_to_depth(index: np.ndarray, min_depth: float, max_depth: float, num_planes: int) -> np.ndarray:
    """Fractional plane index -> depth (inverse depth is linear in the index)."""
    inv_far, inv_near = 1.0 / max_depth, 1.0 / min_depth
    inv = inv_far + np.asarray(index, dtype=np.float64) * (inv_near - inv_far) / (num_planes - 1)
    with np.errstate(divide="ignore"):
        return (1.0 / inv).astype(np.float32)


def plane_homographies(
    K_ref: np.ndarray, K_src: np.ndarray, T_src_ref: np.ndarray, depths: np.ndarray
) -> np.ndarray:
    """(L, 3, 3) homographies mapping reference pixels (u, v, 1) to source pixels, one per plane depth."""
    K_ref = np.asarray(K_ref, dtype=np.float64).reshape(3, 3)
    K_src = np.asarray(K_src, dtype=np.float64).reshape(3, 3)
    T = np.asarray(T_src_ref, dtype=np.float64)
    if T.shape != (4, 4):
        raise ValueError(f"T_src_ref must be 4x4, got shape {T.shape}")
    depths = np.asarray(depths, dtype=np.float64).reshape(-1)
    if np.any(~(depths > 0)):
        raise ValueError(f"plane depths must be > 0, got min {depths.min()}")
    R, t = T[:3, :3], T[:3, 3]
    n = np.array([0.0, 0.0, 1.0])
    M = R[None] + (t[:, None] * n[None, :])[None] / depths[:, None, None]
    return K_src[None] @ M @ np.linalg.inv(K_ref)[None]


def rectified_pose(baseline: float) -> np.ndarray:
    """T_right_left for a rectified pair whose right camera sits `baseline` metres along +x."""
    T = np.eye(4)
    T[0, 3] = -float(baseline)
    return T


def rectified_baseline(T_src_ref: np.ndarray, tol: float = 1e-6) -> float | None:
    """The baseline if T_src_ref is a pure +x rectified pair (R = I, t = (-b, 0, 0), b > 0), else None."""
    T = np.asarray(T_src_ref, dtype=np.float64)
    if np.allclose(T[:3, :3], np.eye(3), atol=tol) and abs(T[1, 3]) < tol and abs(T[2, 3]) < tol and T[0, 3] < 0:
        return float(-T[0, 3])
    return None


# ----------------------------------------------------------------------------------------------- torch twins


def plane_inverse_depths_torch(min_depth: float, max_depth: float, num_planes: int, device=None):
    """Torch twin of `plane_inverse_depths` (float32)."""
    import torch

    return torch.from_numpy(plane_inverse_depths(min_depth, max_depth, num_planes).astype(np.float32)).to(device)


def plane_homographies_torch(K_ref, K_src, T_src_ref, inv_depths):
    """Torch twin of `plane_homographies`, batched and multi-view.

    K_ref (B, 3, 3), K_src (B, V, 3, 3), T_src_ref (B, V, 4, 4), inv_depths (L,) -> (B, V, L, 3, 3).
    Takes inverse depths so the near/far ordering and the ONNX graph stay free of divisions by plane depth.
    """
    import torch

    R = T_src_ref[..., :3, :3]  # (B, V, 3, 3)
    t = T_src_ref[..., :3, 3:4]  # (B, V, 3, 1)
    n = torch.zeros(1, 3, dtype=K_ref.dtype, device=K_ref.device)
    n[0, 2] = 1.0
    tn = t @ n  # (B, V, 3, 3): t n^T
    M = R.unsqueeze(2) + tn.unsqueeze(2) * inv_depths.view(1, 1, -1, 1, 1)
    return K_src.unsqueeze(2) @ M @ _inv_intrinsics(K_ref).view(-1, 1, 1, 3, 3)


def _inv_intrinsics(K):
    """Closed-form inverse of (B, 3, 3) intrinsics [[fx, s, cx], [0, fy, cy], [0, 0, 1]]: ONNX has no Inverse op."""
    import torch

    fx, s, cx = K[:, 0, 0], K[:, 0, 1], K[:, 0, 2]
    fy, cy = K[:, 1, 1], K[:, 1, 2]
    zero, one = torch.zeros_like(fx), torch.ones_like(fx)
    row0 = torch.stack([1 / fx, -s / (fx * fy), (s * cy - cx * fy) / (fx * fy)], -1)
    row1 = torch.stack([zero, 1 / fy, -cy / fy], -1)
    row2 = torch.stack([zero, zero, one], -1)
    return torch.stack([row0, row1, row2], 1)


def inv_intrinsics_torch(K):
    """Inverse of (B, 3, 3) pinhole intrinsics without torch.linalg.inv, so it exports to ONNX."""
    return _inv_intrinsics(K)


def scale_intrinsics_torch(K, scale: float):
    """(B, 3, 3) intrinsics of the same camera resized by `scale` (pixel-centre convention, as PinholeCamera.scaled)."""
    import torch

    S = torch.tensor(
        [[scale, 0.0, 0.5 * scale - 0.5], [0.0, scale, 0.5 * scale - 0.5], [0.0, 0.0, 1.0]],
        dtype=K.dtype, device=K.device,
    )
    return S @ K


def homography_grid_torch(H, height: int, width: int):
    """Homographies (B, L, 3, 3) -> one `grid_sample` grid (B, L*height, width, 2), planes stacked along rows.

    Sampling a (B, C, h, w) source with this grid gives (B, C, L*h, w), which views as (B, C, L, h, w): the
    whole plane sweep is a single 2-D GridSample (TensorRT 8.5 has no 3-D one) and needs no copies of the
    source per plane. align_corners=False, pixel centres at integer coordinates; outside samples read zeros.
    """
    import torch

    b, L = H.shape[0], H.shape[1]
    v, u = torch.meshgrid(
        torch.arange(height, dtype=H.dtype, device=H.device),
        torch.arange(width, dtype=H.dtype, device=H.device),
        indexing="ij",
    )
    pix = torch.stack([u.reshape(-1), v.reshape(-1), torch.ones_like(u).reshape(-1)], 0)  # (3, h*w)
    q = H.reshape(b * L, 3, 3) @ pix  # (B*L, 3, h*w)
    z = q[:, 2:3].clamp(min=1e-6)
    uv = q[:, :2] / z
    gx = (uv[:, 0] + 0.5) * (2.0 / width) - 1.0
    gy = (uv[:, 1] + 0.5) * (2.0 / height) - 1.0
    # Points behind the source camera (z <= 0) must read nothing: push them outside the image.
    behind = q[:, 2] <= 1e-6
    gx = torch.where(behind, torch.full_like(gx, -2.0), gx)
    grid = torch.stack([gx, gy], -1)  # (B*L, h*w, 2)
    return grid.reshape(b, L * height, width, 2)


def warp_to_planes_torch(source, H):
    """Warp source images/features (B, C, h, w) onto every plane: (B, C, L, h, w), zeros outside the source."""
    import torch.nn.functional as F

    b, c, h, w = source.shape
    L = H.shape[1]
    grid = homography_grid_torch(H, h, w)
    out = F.grid_sample(source, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.reshape(b, c, L, h, w)
