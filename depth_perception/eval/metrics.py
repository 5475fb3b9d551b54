"""Eigen et al.'s depth metrics under monodepth2's evaluation protocol: the one place every engine scores depth.

Protocol (monodepth2 `evaluate_depth.py`, Eigen split): ground truth in metres (0 / NaN = none) is kept where
it lies in (MIN_DEPTH, MAX_DEPTH) = (1e-3, 80) m and, for KITTI-shaped images, inside Garg's crop; relative
(scale-ambiguous) predictions are multiplied by the ratio of medians gt / pred per image ("median scaling"),
metric ones are not; predictions are then clamped to [MIN_DEPTH, MAX_DEPTH]. A benchmark averages per-image
metrics (`mean_metrics`), as monodepth2 does.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MIN_DEPTH = 1e-3
MAX_DEPTH = 80.0
DEPTH_KEYS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
# Crops as fractions of (height, height, width, width): rows y0:y1, columns x0:x1.
GARG_CROP = (0.40810811, 0.99189189, 0.03594771, 0.96405229)
EIGEN_CROP = (0.3324324, 0.91351351, 0.0359477, 0.96405229)


def compute_depth_metrics(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """abs_rel, sq_rel, rmse, rmse_log, a1, a2, a3 over matching arrays of valid, positive depths (metres)."""
    gt = np.asarray(gt, dtype=np.float64).reshape(-1)
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    if gt.shape != pred.shape:
        raise ValueError(f"gt has {gt.size} values but pred has {pred.size}")
    if gt.size == 0:
        raise ValueError("no valid ground-truth pixels to score")
    if np.any(~(gt > 0)) or np.any(~(pred > 0)):
        raise ValueError("gt and pred must be positive and finite: mask and clamp them first (evaluate_depth)")
    thresh = np.maximum(gt / pred, pred / gt)
    return {
        "abs_rel": float(np.mean(np.abs(gt - pred) / gt)),
        "sq_rel": float(np.mean((gt - pred) ** 2 / gt)),
        "rmse": float(np.sqrt(np.mean((gt - pred) ** 2))),
        "rmse_log": float(np.sqrt(np.mean((np.log(gt) - np.log(pred)) ** 2))),
        "a1": float(np.mean(thresh < 1.25)),
        "a2": float(np.mean(thresh < 1.25**2)),
        "a3": float(np.mean(thresh < 1.25**3)),
    }


def crop_mask(height: int, width: int, crop: str | None = "garg") -> np.ndarray:
    """Boolean (H, W) mask of Garg's ("garg") or Eigen's ("eigen") crop; everything for None / "none"."""
    mask = np.zeros((height, width), dtype=bool)
    if crop in (None, "none"):
        mask[:] = True
        return mask
    fractions = {"garg": GARG_CROP, "eigen": EIGEN_CROP}.get(crop)
    if fractions is None:
        raise ValueError(f"crop must be 'garg', 'eigen' or 'none', got {crop!r}")
    y0, y1, x0, x1 = fractions
    mask[int(y0 * height):int(y1 * height), int(x0 * width):int(x1 * width)] = True
    return mask


def garg_crop_mask(height: int, width: int) -> np.ndarray:
    """Garg et al.'s crop (the lower, road-and-scene part of a KITTI frame), as monodepth2 applies it."""
    return crop_mask(height, width, "garg")


def median_scale(gt: np.ndarray, pred: np.ndarray) -> float:
    """The factor that matches the prediction's median to the ground truth's (over matching valid pixels)."""
    gt, pred = np.asarray(gt, np.float64).reshape(-1), np.asarray(pred, np.float64).reshape(-1)
    med = float(np.median(pred))
    if not med > 0:
        raise ValueError(f"median of the prediction must be > 0 for median scaling, got {med}")
    return float(np.median(gt)) / med


def evaluate_depth(
    gt: np.ndarray,
    pred: np.ndarray,
    median_scaling: bool = False,
    crop: str | None = "garg",
    min_depth: float = MIN_DEPTH,
    max_depth: float = MAX_DEPTH,
) -> tuple[dict[str, float], float] | None:
    """One image under the protocol: (metrics, applied scale), or None when no pixel has ground truth.

    gt, pred: (H, W) metres at the same resolution; gt 0 / NaN = none; NaN or non-positive predictions count
    as min_depth (a dense method cannot skip pixels).
    """
    gt = np.asarray(gt, np.float64)
    pred = np.asarray(pred, np.float64)
    if gt.shape != pred.shape:
        raise ValueError(f"prediction shape {pred.shape} does not match ground truth {gt.shape}")
    valid = np.isfinite(gt) & (gt > min_depth) & (gt < max_depth)
    valid &= crop_mask(gt.shape[0], gt.shape[1], crop)
    if not valid.any():
        return None
    g = gt[valid]
    p = np.nan_to_num(pred[valid], nan=min_depth, posinf=max_depth)
    p = np.maximum(p, min_depth)
    ratio = median_scale(g, p) if median_scaling else 1.0
    p = np.clip(p * ratio, min_depth, max_depth)
    return compute_depth_metrics(g, p), ratio


def mean_metrics(rows: Sequence[dict[str, float]], keys: Sequence[str] = DEPTH_KEYS) -> dict[str, float]:
    """Per-key mean over images (monodepth2's aggregate)."""
    if not rows:
        raise ValueError("no images were scored")
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}
