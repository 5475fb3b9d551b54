"""Losses of the monocular engine: monodepth2's photometric reprojection objective and Eigen's scale-invariant loss.

Self-supervision (Godard et al. 2019): the target frame's depth and the pose to each source frame warp the
source into the target view (back-project, transform, project, bilinear `grid_sample`); the photometric error
0.85 (1 - SSIM) / 2 + 0.15 L1 is taken per pixel as the minimum over source frames; auto-masking adds the
un-warped sources' errors (plus tiny noise to break ties) to that minimum, so pixels that do not move relative
to the camera (static scenes, cars driving along) choose the identity and stop pulling depth to infinity;
edge-aware smoothness on mean-normalized disparity, weight 1e-3 / 2^scale; every scale is upsampled to the
input resolution before the photometric terms. Supervision (Eigen et al. 2014): the scale-invariant log loss.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..geometry.projection import backproject_torch, pixels_to_grid, project_torch

SSIM_WEIGHT = 0.85
SMOOTHNESS_WEIGHT = 1e-3
IDENTITY_NOISE = 1e-5


class SSIM(nn.Module):
    """Per-pixel SSIM over 3x3 windows with reflection padding (monodepth2's layer); returns (1 - SSIM) / 2."""

    C1 = 0.01**2
    C2 = 0.03**2

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        x, y = F.pad(x, (1, 1, 1, 1), mode="reflect"), F.pad(y, (1, 1, 1, 1), mode="reflect")
        mu_x, mu_y = F.avg_pool2d(x, 3, 1), F.avg_pool2d(y, 3, 1)
        sigma_x = F.avg_pool2d(x * x, 3, 1) - mu_x**2
        sigma_y = F.avg_pool2d(y * y, 3, 1) - mu_y**2
        sigma_xy = F.avg_pool2d(x * y, 3, 1) - mu_x * mu_y
        n = (2 * mu_x * mu_y + self.C1) * (2 * sigma_xy + self.C2)
        d = (mu_x**2 + mu_y**2 + self.C1) * (sigma_x + sigma_y + self.C2)
        return torch.clamp((1 - n / d) / 2, 0, 1)


_SSIM = SSIM()


def photometric_error(pred: Tensor, target: Tensor) -> Tensor:
    """0.85 (1 - SSIM) / 2 + 0.15 |pred - target|, channel mean: (B, 1, H, W)."""
    l1 = (pred - target).abs().mean(1, keepdim=True)
    ssim = _SSIM(pred, target).mean(1, keepdim=True)
    return SSIM_WEIGHT * ssim + (1 - SSIM_WEIGHT) * l1


def warp_source_to_target(
    source: Tensor, depth: Tensor, K: Tensor, T_source_target: Tensor
) -> tuple[Tensor, Tensor]:
    """Sample the source image at the pixels where the target's points land in the source view.

    depth (B, 1, H, W) of the target view, K (B, 3, 3) at that resolution, T_source_target (B, 4, 4).
    Returns the warped source (B, C, H, W) and a mask (B, 1, H, W) of points in front of the source camera
    that project inside it.
    """
    h, w = depth.shape[-2:]
    points = backproject_torch(depth, torch.linalg.inv(K))
    uv, z = project_torch(points, K, T_source_target)
    grid = pixels_to_grid(uv, h, w)
    warped = F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)
    inside = (grid.abs() <= 1).all(-1, keepdim=True).permute(0, 3, 1, 2) & (z > 1e-3)
    return warped, inside.to(source.dtype)


def smoothness_loss(disp: Tensor, image: Tensor) -> Tensor:
    """Edge-aware smoothness of mean-normalized disparity: |d disp| e^{-|d image|} in x and y."""
    d = disp / (disp.mean(dim=(2, 3), keepdim=True) + 1e-7)
    dx = (d[..., :, :-1] - d[..., :, 1:]).abs()
    dy = (d[..., :-1, :] - d[..., 1:, :]).abs()
    ix = (image[..., :, :-1] - image[..., :, 1:]).abs().mean(1, keepdim=True)
    iy = (image[..., :-1, :] - image[..., 1:, :]).abs().mean(1, keepdim=True)
    return (dx * torch.exp(-ix)).mean() + (dy * torch.exp(-iy)).mean()


def min_reprojection_loss(
    target: Tensor, warped: Sequence[Tensor], sources: Sequence[Tensor] | None = None, noise: bool = True
) -> tuple[Tensor, Tensor]:
    """Per-pixel minimum photometric error over warped sources, auto-masked by the un-warped `sources`.

    Returns (mean loss, automask (B, 1, H, W): 1 where a warped source won over every identity error).
    """
    reproj = torch.cat([photometric_error(w, target) for w in warped], 1)
    if sources:
        identity = torch.cat([photometric_error(s, target) for s in sources], 1)
        if noise:
            identity = identity + torch.randn_like(identity) * IDENTITY_NOISE
        combined = torch.cat([identity, reproj], 1)
    else:
        combined = reproj
    best, idx = combined.min(1, keepdim=True)
    n_identity = len(sources) if sources else 0
    return best.mean(), (idx >= n_identity).to(target.dtype)


def scale_invariant_log_loss(pred_depth: Tensor, gt_depth: Tensor, lam: float = 0.5) -> Tensor:
    """Eigen et al. 2014: mean(d^2) - lam * mean(d)^2 with d = log pred - log gt, over pixels with gt > 0.

    Per image, then averaged over the batch; lam = 0.5 as in the paper (lam = 1 would ignore global scale).
    """
    valid = torch.isfinite(gt_depth) & (gt_depth > 0)
    safe_gt = torch.where(valid, gt_depth, torch.ones_like(gt_depth))
    d = torch.where(valid, torch.log(pred_depth.clamp_min(1e-6)) - torch.log(safe_gt), torch.zeros_like(gt_depth))
    n = valid.flatten(1).sum(1).to(d.dtype)
    has = n > 0
    n = n.clamp_min(1.0)
    mean_d = d.flatten(1).sum(1) / n
    mean_d2 = (d**2).flatten(1).sum(1) / n
    per_image = mean_d2 - lam * mean_d**2
    if not bool(has.any()):
        return pred_depth.sum() * 0.0
    return per_image[has].mean()


def upsample_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
