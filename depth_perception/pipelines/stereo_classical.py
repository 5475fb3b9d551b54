"""The classical plane sweep: census + ZNCC matching cost, semi-global aggregation, WTA, consistency check.

Runs with no training: the stereo engine before any network exists, and the baseline every learned result
is compared against. Planes and homographies come from `geometry.plane_sweep` (the same ones DPSNet uses).
Cost aggregation follows Hirschmueller's semi-global matching (4 scanline paths, penalties P1 for a
one-plane step and P2 for larger jumps, P2 lowered across intensity edges); the left-right check for a
rectified pair uses the aggregated volume read along the right image's lines, as SGM does.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..geometry.camera import PinholeCamera
from ..geometry.plane_sweep import (
    plane_homographies,
    plane_index_to_depth,
    plane_inverse_depths,
    rectified_baseline,
    rectified_pose,
)
from . import sweep_kernels

_INVALID_COST = 0.6  # cost where no view sees a pixel on any plane: a bit worse than random
# 96 planes: at 640x192 over 1-80 m (KITTI's f B) 2.1 px of disparity apart, where 64 were 3.1 px; measured on the
# synthetic held-out drives the sweep's AbsRel 0.138 -> 0.070 for 18% more time, and better on all three real
# stereo scenes (README, "Shipped engines")
DEFAULT_PLANES = 96
SHIFT_FRACTIONS = (1, 2, 4, 8, 16, 32)  # powers of two: d = n / fractions and m - d are exact in float32


@dataclass
class ClassicalSweepConfig:
    """Parameters of the classical sweep; costs are normalised to [0, 1] so P1/P2 are in the same units."""

    min_depth: float = 1.0
    max_depth: float = 80.0
    planes: int = DEFAULT_PLANES
    census_radius: int = 2  # 5x5 census window, 24 bits
    zncc_radius: int = 3  # 7x7 ZNCC window
    census_weight: float = 0.5  # cost = w * census + (1 - w) * (1 - zncc) / 2
    p1: float = 0.08
    p2: float = 1.5  # above any single cost: jumps happen where intensity edges lower it
    paths: int = 4  # 4 scanline directions (0 = no aggregation, winner-take-all on the raw cost)
    lr_check: bool = True
    lr_tolerance: float = 1.0  # in planes; at least lr_tolerance_px when planes are finer than that
    lr_tolerance_px: float = 3.0  # in pixels of disparity (SGBM's disp12MaxDiff); 0 = planes only
    uniqueness: float = 0.05  # reject when 1 - best / second best is below this (SGBM's uniqueness ratio)
    # the second best is sought outside the winner's +-1 plane, and at least +-uniqueness_px pixels of disparity
    # where planes are finer (SGBM: +-1 px): neighbours a fraction of a pixel apart cost nearly the same, and
    # counted as rivals they made every pixel of a 512-plane sweep "ambiguous"
    uniqueness_px: float = 1.0
    speckle_size: int = 200  # remove connected blobs of fewer pixels than this (0 = off), as SGBM does
    speckle_range: float = 2.0  # in planes: neighbours closer than this belong to the same blob
    speckle_range_px: float = 2.0  # ... and at least this many pixels of disparity where planes are finer
    min_confidence: float = 0.0  # depth below this confidence becomes NaN
    compiled: bool = True  # the numba kernels (sweep_kernels) where numba is installed; False: numpy only
    # a rectified view's plane disparities rounded to multiples of 1/2^k px, the coarsest grid (k <= 5) that moves
    # no plane by more than shift_grid x the planes' spacing: planes that share a fraction then share one shifted
    # image, its census and its window statistics (`grid_fractions`). 0 = one warp per plane, as before
    shift_grid: float = 1.0 / 32

    def __post_init__(self) -> None:
        if not self.min_depth > 0:
            raise ValueError(f"min_depth must be > 0, got {self.min_depth}")
        if not self.max_depth > self.min_depth:
            raise ValueError(f"max_depth must be > min_depth ({self.min_depth}), got {self.max_depth}")
        if self.planes < 3:
            raise ValueError(f"planes must be >= 3, got {self.planes}")
        if not 1 <= self.census_radius <= 2:
            raise ValueError(f"census_radius must be 1 or 2 (a 3x3 or 5x5 window), got {self.census_radius}")
        if self.zncc_radius < 1:
            raise ValueError(f"zncc_radius must be >= 1, got {self.zncc_radius}")
        if not 0.0 <= self.census_weight <= 1.0:
            raise ValueError(f"census_weight must be in [0, 1], got {self.census_weight}")
        if self.paths not in (0, 2, 4):
            raise ValueError(f"paths must be 0, 2 or 4, got {self.paths}")
        if not (0 <= self.p1 <= self.p2):
            raise ValueError(f"need 0 <= p1 <= p2, got p1={self.p1} p2={self.p2}")
        if not 0.0 <= self.uniqueness < 1.0:
            raise ValueError(f"uniqueness must be in [0, 1), got {self.uniqueness}")
        if self.uniqueness_px < 0 or self.speckle_range_px < 0:
            raise ValueError(f"need uniqueness_px >= 0 and speckle_range_px >= 0, got {self.uniqueness_px}, "
                             f"{self.speckle_range_px}")
        if self.lr_tolerance < 0 or self.lr_tolerance_px < 0:
            raise ValueError(f"need lr_tolerance >= 0 and lr_tolerance_px >= 0, got {self.lr_tolerance}, "
                             f"{self.lr_tolerance_px}")
        if self.speckle_size < 0 or self.speckle_range <= 0:
            raise ValueError(
                f"need speckle_size >= 0 and speckle_range > 0, got {self.speckle_size}, {self.speckle_range}"
            )
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence}")
        if not 0.0 <= self.shift_grid <= 0.5:
            raise ValueError(f"shift_grid must be in [0, 0.5], got {self.shift_grid}")


def _compiled(config: ClassicalSweepConfig) -> bool:
    return config.compiled and sweep_kernels.AVAILABLE


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) or gray (H, W) -> float32 gray in [0, 1]."""
    image = np.asarray(image)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    elif image.ndim != 2:
        raise ValueError(f"image must be (H, W, 3) or (H, W), got shape {image.shape}")
    gray = image.astype(np.float32)
    return gray / 255.0 if image.dtype == np.uint8 else gray


def census_transform(gray: np.ndarray, radius: int) -> np.ndarray:
    """Census codes (H, W) as float32 holding up to 24 bits exactly (so OpenCV can warp them, nearest)."""
    h, w = gray.shape
    pad = cv2.copyMakeBorder(gray, radius, radius, radius, radius, cv2.BORDER_REFLECT)
    code = np.zeros((h, w), np.uint32)
    bit = 0
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dx == 0 and dy == 0:
                continue
            neigh = pad[radius + dy: radius + dy + h, radius + dx: radius + dx + w]
            code |= (neigh < gray).astype(np.uint32) << np.uint32(bit)
            bit += 1
    return code.astype(np.float32)


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    k = 2 * radius + 1
    return cv2.boxFilter(x, cv2.CV_32F, (k, k), normalize=True, borderType=cv2.BORDER_REFLECT)


class _RefStats:
    """What the matching cost needs from the reference image, computed once per frame."""

    def __init__(self, gray: np.ndarray, config: ClassicalSweepConfig) -> None:
        r = config.zncc_radius
        self.gray = gray
        self.census = census_transform(gray, config.census_radius).astype(np.uint32)
        self.bits = (2 * config.census_radius + 1) ** 2 - 1
        self.mean = _box(gray, r)
        self.std = np.sqrt(np.maximum(_box(gray * gray, r) - self.mean**2, 0.0))


def neutral_unseen(cost: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """The cost volume (H, W, L) where a plane no view sees (seen False) takes the pixel's mean cost over the planes
    it does see (`_INVALID_COST` where it sees none): neutral, so that it neither wins nor pushes the aggregation
    (a fixed high cost would favour far planes near borders). `sweep_kernels._neutral` is its compiled twin."""
    n = seen.sum(2, keepdims=True)
    mean_seen = np.where(seen, cost, 0.0).sum(2, keepdims=True) / np.maximum(n, 1)
    return np.where(seen, cost, np.where(n > 0, mean_seen, _INVALID_COST)).astype(np.float32)


def grid_fractions(disparities: np.ndarray, shift_grid: float) -> int:
    """The coarsest grid of 1/Q px (Q in SHIFT_FRACTIONS) that moves no plane by more than `shift_grid` times the
    smallest spacing between the planes' disparities; 0 where none is fine enough (planes under about half a
    pixel apart at the default) or `shift_grid` is 0. The rounding, not its size, is what shifts results: at 1/16
    of the spacing (1/8 px, 128 planes at 0.8 px) the sweep's holes on Middlebury Motorcycle grew by 0.15% of
    the pixels, through the uniqueness and speckle tests; at 1/32 the figures matched the exact planes'."""
    d = np.asarray(disparities, np.float64)
    if shift_grid <= 0 or d.size < 2:
        return 0
    spacing = float(np.abs(np.diff(d)).min())
    return next((q for q in SHIFT_FRACTIONS if 0.5 / q <= shift_grid * spacing), 0)


def quantize_disparities(disparities: np.ndarray, fractions: int) -> np.ndarray:
    """Plane disparities (L,) rounded to 1/`fractions` px (0: unchanged), float32; each moves by at most
    1/(2 fractions) px. The first and last planes round inward, so that no plane leaves the depth range (a pixel
    on the farthest plane would otherwise read as beyond max_depth and be dropped)."""
    d = np.asarray(disparities, np.float64)
    if fractions == 0 or d.size == 0:
        return d.astype(np.float32)
    q = np.round(d * fractions)
    if d.size > 1:
        up = d[-1] >= d[0]
        q[0] = np.ceil(d[0] * fractions) if up else np.floor(d[0] * fractions)
        q[-1] = np.floor(d[-1] * fractions) if up else np.ceil(d[-1] * fractions)
    return (q / fractions).astype(np.float32)


def shift_plane(src_gray: np.ndarray, disparity: float, extend: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The warp of a rectified right view onto one fronto-parallel plane: src(x - d, y), linear along the row,
    neighbours clamped to the image (BORDER_REPLICATE), and where the view sees it (the nearest sample inside).
    What `cv2.warpPerspective` does with that plane's homography, without its 1/32 px quantization. With
    `extend` the warp covers `extend` more columns on each side (x from -extend to W + extend - 1, from the
    clamped source); `inside` stays (H, W).

    With m = ceil(d) and f = m - d every pixel mixes src[x - m] and src[x - m + 1] by the same weights, so
    `sweep_kernels.shift_planes` (all planes at once) runs along memory and gives the same numbers."""
    h, w = src_gray.shape
    m = int(np.ceil(np.float32(disparity)))
    f = np.float32(m) - np.float32(disparity)
    x0 = np.arange(-extend, w + extend) - m
    warped = (np.float32(1.0) - f) * src_gray[:, np.clip(x0, 0, w - 1)] + f * src_gray[:, np.clip(x0 + 1, 0, w - 1)]
    first = int(np.ceil(np.float32(disparity) - np.float32(0.5)))  # nearest sample x - d + 1/2 rounded down
    xs = np.arange(w)
    inside = np.broadcast_to((xs >= first) & (xs < first + w), (h, w))
    return warped.astype(np.float32), inside


def _shifted_cost_volume(ref: _RefStats, src_gray: np.ndarray, disparities: np.ndarray, config: ClassicalSweepConfig,
                         neutral: bool, cost: np.ndarray, valid: np.ndarray) -> None:
    """The compiled cost of a rectified view whose plane disparities lie on a grid of fractions: one shifted
    image per fraction (`sweep_kernels.fraction_images`), its census and window statistics once
    (`fraction_stats`), and per plane only the reference x plane sums (`shifted_cost_volume`)."""
    h, w = ref.gray.shape
    pad = max(config.census_radius, config.zncc_radius)
    shifts = np.ceil(disparities).astype(np.int64)
    frac = (shifts - disparities).astype(np.float32)  # exact: both are multiples of 1/fractions
    fractions, plane_fraction = np.unique(frac, return_inverse=True)
    m_max, m_min = int(shifts.max()), int(shifts.min())
    width = w + 2 * pad + m_max - m_min  # columns j = x - m of every plane's window, x from -pad to w + pad - 1
    images = np.empty((len(fractions), h + 2 * pad, width), np.float32)
    sweep_kernels.fraction_images(src_gray, fractions.astype(np.float32), pad, -m_max - pad, images)
    stats_shape = (len(fractions), h, width - 2 * pad)
    codes = np.empty(stats_shape, np.uint32)
    mean, std = np.empty(stats_shape, np.float32), np.empty(stats_shape, np.float32)
    sweep_kernels.fraction_stats(images, pad, config.census_radius, config.zncc_radius, codes, mean, std)
    ref_pad = cv2.copyMakeBorder(ref.gray, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    sweep_kernels.shifted_cost_volume(
        ref.census, ref_pad, ref.mean, ref.std, images, codes, mean, std, shifts,
        plane_fraction.astype(np.int64), disparities, m_max, config.census_radius, config.zncc_radius,
        config.census_weight, ref.bits, _INVALID_COST, neutral, cost, valid)


def plane_costs(
    ref: _RefStats, src_gray: np.ndarray, homographies: np.ndarray | None, config: ClassicalSweepConfig,
    disparities: np.ndarray | None = None, neutral: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Matching cost (H, W, L) in [0, 1] of one source view, and its validity (H, W, L) bool.

    The view is warped onto each plane by its homography, or, for a rectified right view, shifted along its
    rows by each plane's disparity in pixels (`disparities`, L; `homographies` then unused): the same warp,
    cheaper. With `neutral` a plane the view does not see takes the pixel's mean cost over the planes it sees
    (`neutral_unseen`, what `ClassicalStereo` does with a single view), instead of the fixed invalid cost.

    Where `config.shift_grid` finds a grid (`grid_fractions`) the disparities are first rounded to it, and each plane's
    windows read its shifted source beyond the image's columns (where the view is clamped) instead of
    reflecting the plane at the image's edge; the compiled code then shares work between the planes of one
    fraction (`_shifted_cost_volume`)."""
    h, w = ref.gray.shape
    L = len(homographies) if disparities is None else len(disparities)
    cost = np.empty((h, w, L), np.float32)
    valid = np.empty((h, w, L), bool)
    ones = np.ones_like(src_gray)
    r = config.zncc_radius
    cw = config.census_weight
    pad = max(config.census_radius, r)
    # planes too close for any grid (a fraction each) keep the per-plane kernel: one image per fraction over
    # every plane's columns would take more memory than one warp per plane
    fractions = grid_fractions(disparities, config.shift_grid) if disparities is not None else 0
    gridded = fractions > 0
    if gridded:
        disparities = quantize_disparities(disparities, fractions)
    flags_lin = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    flags_near = cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
    if _compiled(config) and gridded:
        _shifted_cost_volume(ref, src_gray, disparities, config, neutral, cost, valid)
        return cost, valid
    if _compiled(config):  # the warps in OpenCV, everything per pixel in one compiled pass
        warped_pad = np.empty((L, h + 2 * pad, w + 2 * pad), np.float32)
        inside = np.empty((L, h, w), bool)
        if disparities is not None:
            sweep_kernels.shift_planes(src_gray, np.asarray(disparities, np.float32), pad, warped_pad, inside)
        else:
            for idx, H in enumerate(homographies):
                inside[idx] = cv2.warpPerspective(ones, H, (w, h), flags=flags_near, borderValue=0) > 0.5
                warped = cv2.warpPerspective(src_gray, H, (w, h), flags=flags_lin, borderMode=cv2.BORDER_REPLICATE)
                cv2.copyMakeBorder(warped, pad, pad, pad, pad, cv2.BORDER_REFLECT, dst=warped_pad[idx])
        ref_pad = cv2.copyMakeBorder(ref.gray, pad, pad, pad, pad, cv2.BORDER_REFLECT)
        sweep_kernels.plane_cost_volume(ref.census, ref_pad, ref.mean, ref.std, warped_pad, inside,
                                        config.census_radius, r, cw, ref.bits, _INVALID_COST, neutral, cost, valid)
        return cost, valid
    ext = pad if gridded else 0  # the columns beyond the image that the windows read
    crop = slice(ext, ext + w)
    ref_gray = cv2.copyMakeBorder(ref.gray, 0, 0, ext, ext, cv2.BORDER_REFLECT) if ext else ref.gray
    for idx in range(L):
        if disparities is None:
            H = homographies[idx]
            inside = cv2.warpPerspective(ones, H, (w, h), flags=flags_near, borderValue=0) > 0.5
            warped = cv2.warpPerspective(src_gray, H, (w, h), flags=flags_lin, borderMode=cv2.BORDER_REPLICATE)
        else:
            warped, inside = shift_plane(src_gray, float(disparities[idx]), ext)
        c = np.zeros((h, w), np.float32)
        if cw > 0:
            # Census of the warped image (not warped census codes): the cost then varies smoothly with
            # sub-pixel shifts, which the parabola refinement needs.
            codes = census_transform(warped, config.census_radius)[:, crop].astype(np.uint32)
            c += (cw / ref.bits) * np.bitwise_count(ref.census ^ codes).astype(np.float32)
        if cw < 1:
            mw = _box(warped, r)[:, crop]
            sw = np.sqrt(np.maximum(_box(warped * warped, r)[:, crop] - mw * mw, 0.0))
            cov = _box(ref_gray * warped, r)[:, crop] - ref.mean * mw
            zncc = cov / (ref.std * sw + 1e-4)
            c += (1.0 - cw) * 0.5 * np.clip(1.0 - zncc, 0.0, 2.0)
        c[~inside] = _INVALID_COST
        cost[:, :, idx] = c
        valid[:, :, idx] = inside
    return (neutral_unseen(cost, valid) if neutral else cost), valid


def _aggregate_path(C: np.ndarray, edges: np.ndarray, reverse: bool, p1: float, p2: float, out: np.ndarray) -> None:
    """Add one horizontal SGM path (left->right, or right->left if reverse) of C (H, W, L) into out.

    edges[:, x] is the intensity step into column x along the path's direction.
    """
    w = C.shape[1]
    xs = range(w - 1, -1, -1) if reverse else range(w)
    prev = None
    for x in xs:
        c = C[:, x]
        if prev is None:
            cur = c.copy()
        else:
            mn = prev.min(1, keepdims=True)
            # P2 shrinks across an intensity edge, where depth is allowed to jump (Hirschmueller 2008).
            best = np.minimum(prev, mn + np.maximum(p2 / (1.0 + edges[:, x: x + 1]), p1))
            np.minimum(best[:, 1:], prev[:, :-1] + p1, out=best[:, 1:])
            np.minimum(best[:, :-1], prev[:, 1:] + p1, out=best[:, :-1])
            cur = c + best - mn
        out[:, x] += cur
        prev = cur


def semi_global_aggregate(cost: np.ndarray, gray: np.ndarray, config: ClassicalSweepConfig) -> np.ndarray:
    """Sum of SGM path costs over `config.paths` scanline directions; (H, W, L) float32."""
    if config.paths == 0:
        return cost
    edge_gain = 20.0
    if _compiled(config):
        total = np.empty_like(cost)  # sgm_rows writes every element
        sweep_kernels.sgm_rows(cost, gray, config.p1, config.p2, edge_gain, total)
        if config.paths == 4:
            sweep_kernels.sgm_columns(cost, gray, config.p1, config.p2, edge_gain, total)
        return total
    gx = np.zeros_like(gray)
    gx[:, 1:] = np.abs(gray[:, 1:] - gray[:, :-1]) * edge_gain
    total = np.zeros_like(cost)
    _aggregate_path(cost, gx, False, config.p1, config.p2, total)
    _aggregate_path(cost, np.concatenate([gx[:, 1:], gx[:, :1] * 0], 1), True, config.p1, config.p2, total)
    if config.paths == 4:
        ct = np.ascontiguousarray(cost.transpose(1, 0, 2))
        gt = np.ascontiguousarray(gray.T)
        gy = np.zeros_like(gt)
        gy[:, 1:] = np.abs(gt[:, 1:] - gt[:, :-1]) * edge_gain
        tt = np.zeros_like(ct)
        _aggregate_path(ct, gy, False, config.p1, config.p2, tt)
        _aggregate_path(ct, np.concatenate([gy[:, 1:], gy[:, :1] * 0], 1), True, config.p1, config.p2, tt)
        total += tt.transpose(1, 0, 2)
    return total


def winner_take_all(S: np.ndarray, compiled: bool = False, positions: np.ndarray | None = None,
                    exclude: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Fractional plane index (H, W) with parabola refinement, and confidence (H, W) in [0, 1].

    The parabola runs through the winner's cost and its neighbours' at the planes' `positions` (L; their
    disparities where the planes are not evenly spaced, as on the grid of `shift_grid`; None = evenly);
    its offset is clipped to +-0.5 plane. Confidence is 1 - best / second best, the second best taken outside
    the winner's +-`exclude` planes (>= 1) so that a broad but unique minimum still counts as confident.
    """
    h, w, L = S.shape
    x = np.arange(L, dtype=np.float32) if positions is None else np.asarray(positions, np.float32)
    exclude = max(1, int(exclude))
    if compiled and sweep_kernels.AVAILABLE:
        index, conf = np.empty((h, w), np.float32), np.empty((h, w), np.float32)
        sweep_kernels.winner_take_all(S, x, exclude, index, conf)
        return index, conf
    idx = np.argmin(S, axis=2)
    best = np.take_along_axis(S, idx[..., None], 2)[..., 0]
    i0 = np.clip(idx, 1, L - 2)
    cm = np.take_along_axis(S, (i0 - 1)[..., None], 2)[..., 0]
    c0 = np.take_along_axis(S, i0[..., None], 2)[..., 0]
    cp = np.take_along_axis(S, (i0 + 1)[..., None], 2)[..., 0]
    xm, x0, xp = x[i0 - 1], x[i0], x[i0 + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        s1, s2 = (c0 - cm) / (x0 - xm), (cp - c0) / (xp - x0)  # the slopes midway between the three planes
        curv = (s2 - s1) / (xp - xm)
        vertex = np.float32(0.5) * (xm + x0) - s1 / (np.float32(2.0) * curv)
        offset = np.where(vertex >= x0, (vertex - x0) / (xp - x0), (vertex - x0) / (x0 - xm))
    offset = np.where(curv > 1e-9, offset, 0.0)
    interior = (idx >= 1) & (idx <= L - 2)
    sub = idx.astype(np.float32) + np.where(interior, np.clip(offset, -0.5, 0.5), 0.0).astype(np.float32)
    masked = S.copy()
    for off in range(-exclude, exclude + 1):
        np.put_along_axis(masked, np.clip(idx + off, 0, L - 1)[..., None], np.inf, 2)
    second = masked.min(2)
    with np.errstate(divide="ignore", invalid="ignore"):
        conf = np.where(second > 0, 1.0 - best / second, 0.0)
    return sub, np.clip(np.nan_to_num(conf), 0.0, 1.0).astype(np.float32)


def left_right_consistent(S: np.ndarray, index: np.ndarray, disparities: np.ndarray, tolerance: float,
                          compiled: bool = False) -> np.ndarray:
    """Left-right check of a rectified pair from the aggregated volume alone.

    The right view's cost of plane l at right pixel x is the left volume at x + d_l (linear interpolation
    along the row); its winner must map back to the left winner within `tolerance` planes.
    """
    h, w, L = S.shape
    if compiled and sweep_kernels.AVAILABLE:
        right_idx = np.empty((h, w), np.float32)
        sweep_kernels.right_winners(S, np.asarray(disparities, np.float32), right_idx)
        return _back_check(right_idx, index, disparities, tolerance)
    St = np.ascontiguousarray(S.transpose(2, 0, 1))  # (L, H, W): one plane's slice is contiguous
    right = np.full((L, h, w), np.inf, np.float32)
    for lvl, d in enumerate(np.asarray(disparities, np.float32)):
        n = int(np.floor(d))  # x + d lies between x + n and x + n + 1, at the same fraction for every x
        f = d - np.float32(n)
        x0 = np.arange(w) + n
        ok = (x0 >= 0) & (x0 + 1 < w)
        x0c = np.clip(x0, 0, w - 2)
        sl = St[lvl]
        vals = sl[:, x0c] * (np.float32(1.0) - f) + sl[:, x0c + 1] * f
        right[lvl][:, ok] = vals[:, ok]
    return _back_check(np.argmin(right, axis=0).astype(np.float32), index, disparities, tolerance)


def _back_check(right_idx: np.ndarray, index: np.ndarray, disparities: np.ndarray, tolerance: float) -> np.ndarray:
    """Left pixels whose right-view winner, at x - d, maps back within `tolerance` planes of their own."""
    w = index.shape[1]
    L = len(disparities)
    xs = np.arange(w, dtype=np.float32)
    step = (disparities[-1] - disparities[0]) / (L - 1)
    disp_left = disparities[0] + index * step
    xr = np.clip(np.round(xs[None, :] - disp_left).astype(np.int64), 0, w - 1)
    back = np.take_along_axis(right_idx, xr, 1)
    inside = (xs[None, :] - disp_left) >= 0
    return inside & (np.abs(back - index) <= tolerance)


def speckles(index: np.ndarray, valid: np.ndarray, max_size: int, max_diff: float) -> np.ndarray:
    """Pixels in connected blobs (neighbours within max_diff planes) smaller than max_size: isolated mismatches."""
    fixed = np.where(valid, np.round(index * 16.0), -16).astype(np.int16)
    filtered = fixed.copy()
    cv2.filterSpeckles(filtered, -16, int(max_size), int(round(max_diff * 16.0)))
    return valid & (filtered == -16) & (fixed != -16)


class ClassicalStereo:
    """Plane-sweep stereo without learning: `compute(reference, views, camera)` -> (depth, confidence, info)."""

    def __init__(self, config: ClassicalSweepConfig | None = None) -> None:
        self.config = config or ClassicalSweepConfig()
        if _compiled(self.config):
            self._warm_up()

    def _warm_up(self) -> None:
        """Compile the kernels now (or load them from numba's cache), on a tiny pair: the first frame would
        otherwise wait for the compiler (15-30 s on a small CPU, once per machine while the cache lasts). A node
        builds its pipeline on its loader thread, so the wait is spent there, reported as `engine loading`."""
        rng = np.random.default_rng(0)
        image = rng.integers(0, 255, (16, 32), dtype=np.uint8)
        camera = PinholeCamera(32, 16, 20.0, 20.0, 15.5, 7.5)
        baseline = 0.5 * self.config.min_depth
        self.compute(image, [(np.roll(image, -2, axis=1), rectified_pose(baseline))], camera)

    def _disparities(self, camera: PinholeCamera, baseline: float, inv: np.ndarray) -> np.ndarray:
        """A rectified view's plane disparities in pixels, on the cost's grid of fractions."""
        d = camera.fx * baseline * inv
        return quantize_disparities(d, grid_fractions(d, self.config.shift_grid))

    def _source(self, ref: _RefStats, image: np.ndarray, T_src_ref: np.ndarray, camera: PinholeCamera,
                inv: np.ndarray, neutral: bool = False) -> tuple[np.ndarray, np.ndarray]:
        src = to_gray(image)
        if src.shape != ref.gray.shape:
            raise ValueError(f"source image {src.shape} does not match the reference {ref.gray.shape}")
        baseline = rectified_baseline(T_src_ref)
        if baseline is not None:  # a rectified right view: each plane is a shift along the rows
            disparities = self._disparities(camera, baseline, inv)
            return plane_costs(ref, src, None, self.config, disparities=disparities, neutral=neutral)
        homographies = plane_homographies(camera.K, camera.K, T_src_ref, 1.0 / inv)
        return plane_costs(ref, src, homographies, self.config, neutral=neutral)

    def _views(self, ref: _RefStats, views: Sequence[tuple[np.ndarray, np.ndarray]], camera: PinholeCamera,
               inv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The cost volume averaged over the views where valid, and how many views see each plane."""
        total = np.zeros(ref.gray.shape + (self.config.planes,), np.float32)
        count = np.zeros_like(total)
        for image, T_src_ref in views:
            cost, valid = self._source(ref, image, T_src_ref, camera, inv)
            total += np.where(valid, cost, 0.0)
            count += valid
        return neutral_unseen(total / np.maximum(count, 1), count > 0), count

    def _one_view(self, ref: _RefStats, view: tuple[np.ndarray, np.ndarray], camera: PinholeCamera,
                  inv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`_views` for a single view, made neutral by the compiled cost kernel (no passes over the volume in
        numpy)."""
        return self._source(ref, view[0], view[1], camera, inv, neutral=True)

    def compute(
        self,
        reference: np.ndarray,
        views: Sequence[tuple[np.ndarray, np.ndarray]],
        camera: PinholeCamera,
    ) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        """Depth (H, W) float32 metres (NaN where rejected) and confidence (H, W) in [0, 1].

        `views` are `(image, T_src_ref)` pairs seen by the same camera; the first one, if it is a rectified
        right camera, gets the left-right check. Costs of several views are averaged where valid.
        """
        cfg = self.config
        if not views:
            raise ValueError("the classical sweep needs at least one source view")
        t0 = time.perf_counter()
        ref_gray = to_gray(reference)
        if ref_gray.shape != camera.shape:
            raise ValueError(f"reference image {ref_gray.shape} does not match the camera {camera.shape}")
        ref = _RefStats(ref_gray, cfg)
        inv = plane_inverse_depths(cfg.min_depth, cfg.max_depth, cfg.planes)
        if len(views) == 1 and _compiled(cfg):
            cost, count = self._one_view(ref, views[0], camera, inv)
        else:
            cost, count = self._views(ref, views, camera, inv)
        t1 = time.perf_counter()
        S = semi_global_aggregate(cost, ref_gray, cfg)
        t2 = time.perf_counter()
        baseline = rectified_baseline(views[0][1])
        # a single rectified view's planes sit at their disparities on the grid, not evenly spaced
        gridded = baseline is not None and len(views) == 1 and cfg.shift_grid > 0
        disparities = self._disparities(camera, baseline, inv) if baseline is not None else None
        # the planes' spacing in pixels of disparity, where it has one (a rectified view): the checks' pixel floors
        step_px = abs(float(disparities[-1] - disparities[0])) / (cfg.planes - 1) if baseline is not None else None

        def at_least(planes: float, px: float) -> float:
            """A tolerance in planes, widened to `px` pixels of disparity where the planes are finer than that."""
            return planes if step_px is None else max(planes, px / max(step_px, 1e-6))

        exclude = max(1, round(at_least(0.0, cfg.uniqueness_px)))
        index, conf = winner_take_all(S, _compiled(cfg), disparities if gridded else None, exclude)
        winner = np.clip(np.round(index).astype(np.int64), 0, cfg.planes - 1)
        seen = np.take_along_axis(count, winner[..., None], 2)[..., 0] > 0
        keep = seen
        if cfg.lr_check and step_px is not None:
            keep &= left_right_consistent(S, index, disparities, at_least(cfg.lr_tolerance, cfg.lr_tolerance_px),
                                          _compiled(cfg))
        keep &= conf >= max(cfg.uniqueness, cfg.min_confidence)
        if cfg.speckle_size > 0:
            keep &= ~speckles(index, keep, cfg.speckle_size, at_least(cfg.speckle_range, cfg.speckle_range_px))
        conf = np.where(keep, conf, 0.0).astype(np.float32)
        if gridded:  # from the planes' own disparities (up to 1/16 px from the exact planes: a few per cent of
            # depth at the far planes' few pixels of disparity)
            with np.errstate(divide="ignore"):
                depth = camera.fx * baseline / np.interp(index, np.arange(cfg.planes), disparities)
        else:
            depth = plane_index_to_depth(index, cfg.min_depth, cfg.max_depth, cfg.planes)
        depth = np.where(keep, depth, np.nan).astype(np.float32)
        t3 = time.perf_counter()
        info = {
            "cost_ms": (t1 - t0) * 1e3,
            "aggregate_ms": (t2 - t1) * 1e3,
            "select_ms": (t3 - t2) * 1e3,
            "valid_fraction": float(keep.mean()),
        }
        if step_px is not None:
            info["plane_step_px"] = step_px  # the depth's resolution in disparity, before sub-plane refinement
        return depth, conf, info
