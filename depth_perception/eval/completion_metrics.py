"""KITTI depth-completion metrics: RMSE and MAE in millimetres, iRMSE and iMAE in 1/km, on pixels with ground truth.

As the KITTI depth-completion devkit: a frame's figures are computed over its pixels with ground truth
(gt > 0, finite); a benchmark averages the per-frame figures (`average_metrics`). Predictions must be dense:
a missing or non-positive prediction on a ground-truth pixel is counted as `MIN_PREDICTION` metres, so holes
are penalised instead of silently skipped.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MIN_PREDICTION = 0.1  # metres; stands in for NaN / <= 0 predictions (keeps the inverse metrics finite)
KEYS = ("rmse_mm", "mae_mm", "irmse", "imae")


def completion_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Metrics of one frame: pred and gt in metres, same shape; gt 0 or NaN = no ground truth.

    Returns {"rmse_mm", "mae_mm", "irmse", "imae", "pixels"}; NaN figures when the frame has no ground truth.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} does not match ground truth {gt.shape}")
    valid = np.isfinite(gt) & (gt > 0)
    n = int(valid.sum())
    if n == 0:
        return {**{k: float("nan") for k in KEYS}, "pixels": 0}
    p = pred[valid]
    p = np.where(np.isfinite(p) & (p > 0), p, MIN_PREDICTION)
    p = np.maximum(p, MIN_PREDICTION)
    g = gt[valid]
    err = p - g
    ierr = 1.0 / p - 1.0 / g  # 1/m
    return {
        "rmse_mm": float(np.sqrt(np.mean(err**2)) * 1000.0),
        "mae_mm": float(np.mean(np.abs(err)) * 1000.0),
        "irmse": float(np.sqrt(np.mean(ierr**2)) * 1000.0),  # 1/m -> 1/km
        "imae": float(np.mean(np.abs(ierr)) * 1000.0),
        "pixels": n,
    }


def average_metrics(frames: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean of per-frame figures over frames that had ground truth (the devkit's averaging)."""
    rows = [f for f in frames if f.get("pixels", 0) > 0]
    if not rows:
        return {**{k: float("nan") for k in KEYS}, "frames": 0}
    out = {k: float(np.mean([r[k] for r in rows])) for k in KEYS}
    out["frames"] = len(rows)
    return out
