"""Classical depth completion (IP-Basic): morphological in-fill of sparse LiDAR depth; no training, numpy + OpenCV.

Seed: Ku, Harakeh, Waslander, "In Defense of Classical Image Processing: Fast Depth Completion on the CPU"
(CRV 2018), its `fill_in_fast`: invert depth (so dilation, a max filter, prefers the nearer surface), dilate
with a 5x5 diamond, close holes (5x5), fill what is still empty from a 7x7 dilation, extend each column's
topmost value to the top of the image and fill from a 31x31 dilation, median blur (5), bilateral or Gaussian
blur, re-invert. Our one addition: any pixel still empty after that takes its nearest filled value, so the
result is dense everywhere (a hole would otherwise count as 0 m in the metrics).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .compiled import compiled_or
from .resample import unit_rgb

DIAMOND_KERNEL_5 = np.array(
    [[0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0], [0, 0, 1, 0, 0]], dtype=np.uint8
)
FULL_KERNEL_5 = np.ones((5, 5), np.uint8)
FULL_KERNEL_7 = np.ones((7, 7), np.uint8)
FULL_KERNEL_31 = np.ones((31, 31), np.uint8)
EMPTY = 0.1  # inverted values below this are "no depth" (IP-Basic's threshold)


@dataclass
class IpBasicConfig:
    max_depth: float = 100.0  # inversion constant; must exceed every input depth
    extrapolate: bool = True  # extend to the top of the image and fill large holes
    blur: str = "bilateral"  # "bilateral" | "gaussian" | "none"

    def __post_init__(self) -> None:
        if not self.max_depth > 0:
            raise ValueError(f"max_depth must be > 0, got {self.max_depth}")
        if self.blur not in ("bilateral", "gaussian", "none"):
            raise ValueError(f"blur must be 'bilateral', 'gaussian' or 'none', got {self.blur!r}")


def _fill_nearest(inv: np.ndarray) -> np.ndarray:
    """Empty pixels take the value of the nearest filled pixel (distance transform labels)."""
    empty = inv < EMPTY
    if not empty.any() or empty.all():
        return inv
    _, labels = cv2.distanceTransformWithLabels(empty.astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    filled = ~empty
    # Labels number the zero (filled) pixels in scan order; map each label back to its pixel's value.
    values = np.zeros(int(labels.max()) + 1, np.float32)
    values[labels[filled]] = inv[filled]
    return np.where(empty, values[labels], inv).astype(np.float32)


def ipbasic_complete(sparse_depth: np.ndarray, config: IpBasicConfig | None = None) -> np.ndarray:
    """Sparse depth (H, W) metres, 0 (or NaN) = none -> dense depth (H, W) float32; all zeros if no input."""
    cfg = config or IpBasicConfig()
    d = np.nan_to_num(np.asarray(sparse_depth, dtype=np.float32), nan=0.0, posinf=0.0)
    if d.ndim != 2:
        raise ValueError(f"sparse_depth must be (H, W), got shape {d.shape}")
    valid = d > EMPTY
    if not valid.any():
        return np.zeros_like(d)
    inv = np.where(valid, cfg.max_depth - np.minimum(d, cfg.max_depth - EMPTY), 0.0).astype(np.float32)
    inv = cv2.dilate(inv, DIAMOND_KERNEL_5)
    inv = cv2.morphologyEx(inv, cv2.MORPH_CLOSE, FULL_KERNEL_5)
    empty = inv < EMPTY
    inv[empty] = cv2.dilate(inv, FULL_KERNEL_7)[empty]
    if cfg.extrapolate:
        h, w = inv.shape
        has = inv > EMPTY
        top = np.argmax(has, axis=0)  # first filled row per column
        cols = np.arange(w)
        top_values = inv[top, cols]
        above = (np.arange(h)[:, None] < top[None, :]) & has.any(axis=0)[None, :]
        inv = np.where(above, top_values[None, :], inv).astype(np.float32)
        empty = inv < EMPTY
        inv[empty] = cv2.dilate(inv, FULL_KERNEL_31)[empty]
    inv = cv2.medianBlur(inv, 5)
    if cfg.blur == "bilateral":
        inv = cv2.bilateralFilter(inv, 5, 1.5, 2.0)
    elif cfg.blur == "gaussian":
        filled = inv > EMPTY
        blurred = cv2.GaussianBlur(inv, (5, 5), 0)
        inv[filled] = blurred[filled]
    inv = _fill_nearest(inv)
    out = np.where(inv > EMPTY, cfg.max_depth - inv, 0.0)
    return out.astype(np.float32)


def distance_confidence(sparse_depth: np.ndarray, scale_px: float = 8.0) -> np.ndarray:
    """Confidence of an in-filled pixel: exp(-distance to the nearest measurement / scale), 1 on measurements."""
    dist = measurement_distance(sparse_depth)
    return np.zeros(np.shape(sparse_depth), np.float32) if dist is None else np.exp(-dist / scale_px).astype(np.float32)


def measurement_distance(sparse_depth: np.ndarray) -> np.ndarray | None:
    """Each pixel's distance (px) to the nearest measurement (> 0); None where there is none at all."""
    d = np.nan_to_num(np.asarray(sparse_depth, dtype=np.float32), nan=0.0)
    empty = (d <= EMPTY).astype(np.uint8)
    return None if empty.all() else cv2.distanceTransform(empty, cv2.DIST_L2, 3)


def covered_within(sparse_depth: np.ndarray, radius_px: float, share: float = 0.9) -> bool:
    """True if at least `share` of the pixels lie within `radius_px` of a measurement (> 0). A whole frame of a
    scanner's rows is not (everything above its top beam is bare); the same rows cropped to below it can be."""
    dist = measurement_distance(sparse_depth)
    return dist is not None and bool(np.mean(dist <= radius_px) >= share)


PRIOR_REFERENCE_DEPTH = 10.0  # m: the in-fill prior runs on depth rescaled so that its median reads this


def ipbasic_prior(sparse_depth: np.ndarray) -> np.ndarray:
    """IP-Basic made blind to the depth range, as the learned completion engine's `prior_depth` input.

    IP-Basic's bilateral filter works in metres (a 1.5 m colour sigma blurs across every edge of a scene 2 m
    away and none of a street 40 m away), so the sparse depth is rescaled to a median of
    PRIOR_REFERENCE_DEPTH first and the in-fill rescaled back: `ipbasic_prior(k * d) == k * ipbasic_prior(d)`.
    """
    d = np.nan_to_num(np.asarray(sparse_depth, dtype=np.float32), nan=0.0, posinf=0.0)
    valid = d > 0
    if not valid.any():
        return np.zeros_like(d)
    k = PRIOR_REFERENCE_DEPTH / float(np.median(d[valid]))
    cfg = IpBasicConfig(max_depth=max(100.0, float(d.max()) * k + 1.0))
    return (ipbasic_complete(d * k, cfg) / k).astype(np.float32)


GUIDED_SIGMA_S = 40.0  # px: the guided in-fill's spatial reach
GUIDED_SIGMA_R = 0.2  # colour step (summed over RGB in [0, 1]) that counts as an edge
GUIDED_BASE_WEIGHT = 1e-4  # weight of the fallback in-fill against the filtered measurements' weight


def _recursive_passes_numpy(values: np.ndarray, fx: np.ndarray, fy: np.ndarray) -> None:
    """One iteration of the domain transform's recursive filter (Gastal & Oliveira's RF), in place on values
    (C, H, W): a horizontal pass (forward, then backward) and a vertical one, each step weighted by fx / fy
    (H, W) = a ** (domain distance into the pixel)."""
    h, w = fx.shape
    for x in range(1, w):
        values[..., x] += fx[:, x] * (values[..., x - 1] - values[..., x])
    for x in range(w - 2, -1, -1):
        values[..., x] += fx[:, x + 1] * (values[..., x + 1] - values[..., x])
    for y in range(1, h):
        values[:, y] += fy[y] * (values[:, y - 1] - values[:, y])
    for y in range(h - 2, -1, -1):
        values[:, y] += fy[y + 1] * (values[:, y + 1] - values[:, y])


def _recursive_passes_loops(values: np.ndarray, fx: np.ndarray, fy: np.ndarray) -> None:
    """`_recursive_passes_numpy` in explicit loops (the same arithmetic per element): what numba compiles. The
    vertical passes run along the rows, so they vectorize."""
    channels, h, w = values.shape
    for c in range(channels):
        for y in range(h):
            row, f = values[c, y], fx[y]
            for x in range(1, w):
                row[x] += f[x] * (row[x - 1] - row[x])
            for x in range(w - 2, -1, -1):
                row[x] += f[x + 1] * (row[x + 1] - row[x])
        for y in range(1, h):
            row, prev, f = values[c, y], values[c, y - 1], fy[y]
            for x in range(w):
                row[x] += f[x] * (prev[x] - row[x])
        for y in range(h - 2, -1, -1):
            row, nxt, f = values[c, y], values[c, y + 1], fy[y + 1]
            for x in range(w):
                row[x] += f[x] * (nxt[x] - row[x])


_recursive_passes = compiled_or(_recursive_passes_loops, _recursive_passes_numpy)  # numba where installed


def edge_weights(image: np.ndarray, sigma_s: float = GUIDED_SIGMA_S, sigma_r: float = GUIDED_SIGMA_R,
                 iterations: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    """The domain transform's per-iteration step weights (horizontal, vertical; each (H, W)) for `image`: what
    `guided_fill` filters with, computed once for fills that share the image. Iteration i uses
    sigma_i = sigma_s sqrt(3) 2^(N-i-1) / sqrt(4^N - 1), so each weight is the square of the one before."""
    img = np.asarray(image, np.float32)
    if np.asarray(image).dtype == np.uint8:
        img = img / np.float32(255.0)
    if img.ndim == 2:
        img = img[..., None]
    gain = np.float32(sigma_s / sigma_r)
    step_x = np.ones(img.shape[:2], np.float32)
    step_y = np.ones(img.shape[:2], np.float32)
    step_x[:, 1:] += gain * np.abs(np.diff(img, axis=1)).sum(2)
    step_y[1:, :] += gain * np.abs(np.diff(img, axis=0)).sum(2)
    sigma = sigma_s * np.sqrt(3.0) * 2.0 ** (iterations - 1) / np.sqrt(4.0 ** iterations - 1.0)
    a = np.float32(np.exp(-np.sqrt(2.0) / sigma))
    weights = [(a ** step_x, a ** step_y)]
    for _ in range(iterations - 1):
        wx, wy = weights[-1]
        weights.append((wx * wx, wy * wy))
    return weights


def guided_fill(image: np.ndarray, sparse_depth: np.ndarray, base: np.ndarray, sigma_s: float = GUIDED_SIGMA_S,
                sigma_r: float = GUIDED_SIGMA_R, base_weight: float = GUIDED_BASE_WEIGHT,
                iterations: int = 3, weights: list[tuple[np.ndarray, np.ndarray]] | None = None) -> np.ndarray:
    """Colour-guided in-fill: the measurements spread along the image and stopped by its colour edges, with
    `base` (a dense in-fill, same shape) where no measurement reaches. Measured pixels keep their value.

    Normalized convolution (Knutsson & Westin) of the sparse depth by the domain transform's recursive filter
    (Gastal & Oliveira, "Domain Transform for Edge-Aware Image and Video Processing", SIGGRAPH 2011: `iterations`
    horizontal + vertical passes, sigma_s in pixels, sigma_r in summed RGB steps): depth = (F(d m) + b base) /
    (F(m) + b) with m the measurement mask and b = `base_weight`. Linear in depth, so
    `guided_fill(I, k d, k base) == k guided_fill(I, d, base)`. image: (H, W, 3) uint8 or float in [0, 1].
    `weights`: `edge_weights(image, sigma_s, sigma_r, iterations)`, when the caller has them already."""
    d = np.nan_to_num(np.asarray(sparse_depth, np.float32), nan=0.0, posinf=0.0)
    if np.shape(image)[:2] != d.shape or np.shape(base) != d.shape:
        raise ValueError(f"image {np.shape(image)[:2]}, sparse depth {d.shape} and base {np.shape(base)} must be "
                         "one size")
    if weights is None:
        weights = edge_weights(image, sigma_s, sigma_r, iterations)
    measured = (d > 0).astype(np.float32)
    values = np.stack([d * measured, measured])
    for wx, wy in weights:
        _recursive_passes(values, wx, wy)
    b = np.float32(base_weight)
    filled = (values[0] + b * np.asarray(base, np.float32)) / (values[1] + b)
    return np.where(measured > 0, d, filled).astype(np.float32)


def guided_prior(image: np.ndarray, sparse_depth: np.ndarray) -> np.ndarray:
    """`guided_fill` over `ipbasic_prior`: the learned completion engine's `prior_depth` for sidecar prior
    "guided". Blind to the depth range as `ipbasic_prior` is (`guided_prior(I, k d) == k guided_prior(I, d)`)."""
    return guided_fill(image, sparse_depth, ipbasic_prior(sparse_depth))


COMPLETION_PRIORS = ("none", "ipbasic", "guided")  # what a completion engine's prior_depth input holds


def completion_prior(prior: str, image: np.ndarray, sparse_depth: np.ndarray) -> np.ndarray:
    """The in-fill named by a completion engine's sidecar `prior` ("ipbasic" or "guided"), as its prior_depth."""
    if prior == "ipbasic":
        return ipbasic_prior(sparse_depth)
    if prior == "guided":
        return guided_prior(image, sparse_depth)
    raise ValueError(f"no in-fill for prior {prior!r} (one of {COMPLETION_PRIORS[1:]})")


def fill_rows_background(disp: np.ndarray) -> np.ndarray:
    """KITTI devkit hole filling: each invalid pixel takes the smaller disparity of its nearest valid left and
    right neighbours in the row (the background); rows with no valid pixel become 0."""
    disp = np.asarray(disp, np.float32)
    valid = np.isfinite(disp) & (disp > 0)
    h, w = disp.shape
    idx = np.where(valid, np.arange(w)[None, :], -1)
    left = np.maximum.accumulate(idx, axis=1)
    idx_r = np.where(valid, np.arange(w)[None, :], w)
    right = np.minimum.accumulate(idx_r[:, ::-1], axis=1)[:, ::-1]
    rows = np.arange(h)[:, None]
    dl = np.where(left >= 0, disp[rows, np.clip(left, 0, w - 1)], np.inf)
    dr = np.where(right < w, disp[rows, np.clip(right, 0, w - 1)], np.inf)
    fill = np.minimum(dl, dr)
    out = np.where(valid, disp, fill)
    return np.where(np.isfinite(out), out, 0.0).astype(np.float32)


EDGE_STEP_PX = 0.5  # a disparity step larger than this between neighbours is a depth edge (a ground plane
#                    changes by baseline / camera height, about 0.33 px a row on KITTI, at any resolution)
EDGE_ITERATIONS = 3
EDGE_SIGMA_S, EDGE_SIGMA_R = 20.0, 0.1  # the guided fill's reach and edge stop for the pixels at an edge


def snap_edges(image: np.ndarray, disparity: np.ndarray, step: float = EDGE_STEP_PX,
               iterations: int = EDGE_ITERATIONS, fill_holes: bool = False) -> np.ndarray:
    """A disparity map (H, W; NaN or <= 0 = hole) with its depth edges moved onto the image's colour edges.

    Window matching fattens the nearer surface: near a depth step a window straddles both surfaces, and the
    stronger texture wins for a pixel or two on the wrong side (Scharstein & Szeliski's "foreground fattening");
    beside an occlusion hole the same happens at the hole's border. Each iteration drops both pixels of every
    step over `step` disparity between 4-neighbours (the first also every pixel beside a hole) and re-estimates
    them by `guided_fill` of the rest (sigma_s 20 px, sigma_r 0.1), which stops at colour edges, so a dropped
    pixel takes the surface whose colour it shares; `fill_rows_background` is the base where nothing reaches. A
    step that sits on a colour edge comes back as it was, so the iterations walk a fattened step onto the
    edge and leave a true one alone. Holes stay holes unless `fill_holes`. Linear in disparity (`step` is in its
    units). image: (H, W, 3) uint8 or float in [0, 1]."""
    disp = np.asarray(disparity, np.float32)
    if np.shape(image)[:2] != disp.shape:
        raise ValueError(f"image {np.shape(image)[:2]} and disparity {disp.shape} must be one size")
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    valid = np.isfinite(disp) & (disp > 0)
    d = np.where(valid, disp, 0.0).astype(np.float32)
    weights = edge_weights(image, EDGE_SIGMA_S, EDGE_SIGMA_R)
    base = None
    for i in range(iterations):
        both = (valid[:, 1:] & valid[:, :-1]) if i else (valid[:, 1:] | valid[:, :-1])
        dx = both & (np.abs(d[:, 1:] - d[:, :-1]) > step)
        both = (valid[1:, :] & valid[:-1, :]) if i else (valid[1:, :] | valid[:-1, :])
        dy = both & (np.abs(d[1:, :] - d[:-1, :]) > step)
        edge = np.zeros(disp.shape, bool)
        edge[:, 1:] |= dx
        edge[:, :-1] |= dx
        edge[1:, :] |= dy
        edge[:-1, :] |= dy
        keep = valid & ~edge
        if base is None:  # where no kept pixel reaches (the first pass keeps the fewest)
            base = fill_rows_background(np.where(keep, d, np.nan))
        filled = guided_fill(image, np.where(keep, d, 0.0), base, weights=weights)
        d = np.where(keep, d, np.where(valid, filled, 0.0)).astype(np.float32)
    if fill_holes:
        d = np.where(valid, d, filled)
    return np.where(d > 0, d, np.nan).astype(np.float32)


def snap_depth_edges(image: np.ndarray, depth: np.ndarray, fx_baseline: float) -> np.ndarray:
    """`snap_edges` on a depth map (metres, NaN holes kept), in disparity fx * baseline / depth. image as there,
    or grey (H, W) / uint16 (`geometry.resample.unit_rgb`)."""
    img = unit_rgb(image)
    valid = np.isfinite(depth) & (depth > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        disp = np.where(valid, np.float32(fx_baseline) / depth, np.nan)
        return (np.float32(fx_baseline) / snap_edges(img, disp)).astype(np.float32)


STEREO_HOLE_FILLS = ("rows", "guided")  # how a refinement engine's prior_depth fills the sweep's holes


def stereo_prior(depth: np.ndarray, confidence: np.ndarray, fx_baseline: float, max_depth: float,
                 image: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A classical sweep's depth (H, W) metres, NaN at its holes, made dense for a refinement engine: holes take
    the background (smaller) disparity of their row (`fill_rows_background`), rows with none `max_depth`. With
    `image` (the left image at the same size: hole fill "guided") the holes take `guided_fill` of the sweep's
    disparities instead, stopped at the image's colour edges, over the row fill where none reaches.
    Returns (depth, confidence), confidence 0 at the filled pixels."""
    depth = np.asarray(depth, np.float32)
    valid = np.isfinite(depth) & (depth > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        disp = np.where(valid, np.float32(fx_baseline) / depth, np.nan)
    floor = np.float32(fx_baseline / max_depth)
    filled = np.maximum(fill_rows_background(disp), floor)
    if image is not None:
        filled = np.maximum(guided_fill(image, np.where(valid, disp, 0.0), filled), floor)
    conf = np.where(valid, np.nan_to_num(np.asarray(confidence, np.float32)), 0.0)
    return (np.float32(fx_baseline) / filled).astype(np.float32), np.clip(conf, 0.0, 1.0).astype(np.float32)
