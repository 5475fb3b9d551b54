"""NLSPN's training loss: L1 + L2 on depth in metres over the pixels with ground truth."""
from __future__ import annotations

import torch
from torch import Tensor


def l1_l2_loss(
    pred: Tensor, gt: Tensor, l1_weight: float = 1.0, l2_weight: float = 1.0
) -> tuple[Tensor, Tensor, Tensor]:
    """(loss, l1, l2): mean |e| and mean e^2 over pixels with gt > 0 (finite); 0 with no ground truth."""
    valid = torch.isfinite(gt) & (gt > 0)
    vf = valid.to(pred.dtype)
    err = torch.where(valid, pred - torch.nan_to_num(gt), torch.zeros_like(pred))
    n = vf.sum().clamp_min(1.0)
    l1 = err.abs().sum() / n
    l2 = (err * err).sum() / n
    return l1_weight * l1 + l2_weight * l2, l1, l2
