"""Losses of the plane-sweep network: depth in plane units, normal cosine, NAS depth-normal consistency."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..geometry.plane_sweep import inv_intrinsics_torch


def inverse_depth_loss(inv_pred: Tensor, depth_gt: Tensor, inv_step: float, max_depth: float) -> Tensor:
    """Smooth L1 on inverse depth measured in planes (one plane = one unit), over pixels with ground truth.

    In a rectified pair a plane step is a fixed disparity step, so this is a disparity loss that works for
    any pose. Ground truth: metres, 0 or NaN = none; beyond max_depth is ignored.
    """
    valid = torch.isfinite(depth_gt) & (depth_gt > 0) & (depth_gt <= max_depth)
    safe = torch.where(valid, depth_gt, torch.ones_like(depth_gt))
    inv_gt = torch.where(valid, 1.0 / safe, torch.zeros_like(depth_gt))
    err = F.smooth_l1_loss(inv_pred / inv_step, inv_gt / inv_step, reduction="none", beta=1.0)
    vf = valid.to(err.dtype)
    return (err * vf).sum() / vf.sum().clamp_min(1.0)


def normal_loss(pred: Tensor, gt: Tensor) -> Tensor:
    """1 - cos(angle) over pixels whose ground-truth normal is a unit vector (zeros mark none)."""
    valid = (gt.norm(dim=1) > 0.5).to(pred.dtype)
    cos = (F.normalize(pred, dim=1, eps=1e-6) * F.normalize(gt, dim=1, eps=1e-6)).sum(1)
    return ((1.0 - cos) * valid).sum() / valid.sum().clamp_min(1.0)


def depth_normal_consistency_loss(
    inv_depth: Tensor, normal: Tensor, intrinsics: Tensor, mask: Tensor | None = None, delta: float = 0.1
) -> Tensor:
    """NAS depth-normal consistency: image gradients of the depth map against those the normals imply (Huber).

    For the plane n . X = c through a pixel, 1/z = n . r / c with r = K^-1 (u, v, 1): inverse depth is linear
    in the pixel coordinates, so its Sobel derivatives are exact on a plane, and z * d(1/z)/du = n_x / (fx n . r)
    (same for v). Working on z * grad(1/z) keeps the loss free of scale and zero for planar depth with its
    true normal. Pixels seen edge-on (|n . r| / |r| < 0.1) and the image border are left out.
    """
    b, _, h, w = inv_depth.shape
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=inv_depth.dtype,
                      device=inv_depth.device) / 8.0
    ky = kx.t().contiguous()
    gx = F.conv2d(inv_depth, kx.view(1, 1, 3, 3))
    gy = F.conv2d(inv_depth, ky.view(1, 1, 3, 3))
    v, u = torch.meshgrid(
        torch.arange(h, dtype=inv_depth.dtype, device=inv_depth.device),
        torch.arange(w, dtype=inv_depth.dtype, device=inv_depth.device),
        indexing="ij",
    )
    pix = torch.stack([u.reshape(-1), v.reshape(-1), torch.ones_like(u).reshape(-1)], 0)
    rays = (inv_intrinsics_torch(intrinsics) @ pix).reshape(b, 3, h, w)
    n_dot_r = (normal * rays).sum(1, keepdim=True)
    cos = n_dot_r / rays.norm(dim=1, keepdim=True)
    ok = cos.abs() > 0.1
    safe = torch.where(ok, n_dot_r, torch.ones_like(n_dot_r))
    fx = intrinsics[:, 0, 0].view(b, 1, 1, 1)
    fy = intrinsics[:, 1, 1].view(b, 1, 1, 1)
    ex = normal[:, 0:1] / (fx * safe)
    ey = normal[:, 1:2] / (fy * safe)
    z = 1.0 / inv_depth.clamp_min(1e-6)
    inner = (slice(None), slice(None), slice(1, h - 1), slice(1, w - 1))
    res_x = z[inner] * gx - ex[inner]
    res_y = z[inner] * gy - ey[inner]
    valid = ok[inner]
    if mask is not None:
        valid = valid & (mask[inner] > 0)
    valid_f = valid.to(inv_depth.dtype)
    # Pixel-units gradients are small (1/fx); compare them in units of 1/fx so Huber's delta means something.
    loss = F.huber_loss(res_x * fx, torch.zeros_like(res_x), reduction="none", delta=delta) + \
        F.huber_loss(res_y * fy, torch.zeros_like(res_y), reduction="none", delta=delta)
    return (loss * valid_f).sum() / valid_f.sum().clamp_min(1.0)
