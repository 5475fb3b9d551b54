"""Sparse depth sampled from dense ground truth, in the patterns depth sensors leave: what completion engines are
trained and scored on when no real LiDAR scan exists.

- `random_pattern`: a uniform random share of the pixels (a structured-light or ToF sensor's dropouts, or
  NLSPN's NYU protocol of 500 random points).
- `scanner_pattern`: a spinning scanner above the camera, `beams` cones of constant elevation sampled at a fixed
  azimuth step (HDL-64E-like by default), each return on the ground-truth pixel nearest its ray.
- `clustered_pattern`: samples only inside a few random blobs (a sensor that sees part of the scene).
- `random_sensor_pattern`: one of the above with random parameters, for training.

Depth maps are metres, 0 or NaN = none; every function returns float32 with 0 = no sample.
"""
from __future__ import annotations

import numpy as np

from ..geometry.camera import PinholeCamera


def _valid(depth: np.ndarray) -> np.ndarray:
    return np.isfinite(depth) & (depth > 0)


def random_pattern(depth: np.ndarray, density: float, seed: int | np.random.Generator = 0) -> np.ndarray:
    """Sparse depth at a uniform random share `density` of the pixels with ground truth."""
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}")
    rng = np.random.default_rng(seed)
    keep = _valid(depth) & (rng.random(depth.shape) < density)
    return np.where(keep, depth, 0.0).astype(np.float32)


def scanner_pattern(depth: np.ndarray, camera: PinholeCamera, beams: int = 64, height_m: float = 0.3,
                    fov_deg: tuple[float, float] = (-24.9, 2.0), azimuth_step_deg: float = 0.17,
                    seed: int | np.random.Generator = 0) -> np.ndarray:
    """Sparse depth a spinning scanner `height_m` above the camera would give (no occlusion test beyond the
    nearest ray: the scanner sees the scene from almost the camera's place)."""
    if beams < 1:
        raise ValueError(f"beams must be >= 1, got {beams}")
    if depth.shape != camera.shape:
        raise ValueError(f"depth {depth.shape} does not match the camera {camera.shape}")
    v, u = np.nonzero(_valid(depth))
    z = depth[v, u].astype(np.float64)
    x, y = (u - camera.cx) / camera.fx * z, (v - camera.cy) / camera.fy * z
    y_from_scanner = y + height_m  # optical frame, y down: the scanner sits at y = -height_m
    elevation = np.degrees(np.arctan2(-y_from_scanner, np.hypot(x, z)))
    azimuth = np.degrees(np.arctan2(x, z))
    beam_angles = np.linspace(fov_deg[0], fov_deg[1], beams)
    beam_step = (fov_deg[1] - fov_deg[0]) / max(1, beams - 1)
    nearest_beam = np.clip(np.rint((elevation - fov_deg[0]) / beam_step), 0, beams - 1).astype(int)
    # a beam is about 0.16 of the 64-beam spacing thick; never thinner than a pixel row
    thickness = max(beam_step * 0.08, 0.5 * np.degrees(1.0 / camera.fy))
    on_beam = np.abs(elevation - beam_angles[nearest_beam]) < thickness
    phase = np.random.default_rng(seed).uniform(0, azimuth_step_deg)
    pixel_deg = np.degrees(1.0 / camera.fx)  # one column's angular width at the image centre
    on_step = np.abs(((azimuth - phase) / azimuth_step_deg + 0.5) % 1.0 - 0.5) * azimuth_step_deg < 0.5 * pixel_deg
    keep = on_beam & on_step
    sparse = np.zeros(depth.shape, np.float32)
    sparse[v[keep], u[keep]] = depth[v[keep], u[keep]]
    return sparse


def clustered_pattern(depth: np.ndarray, density: float, clusters: int = 6,
                      seed: int | np.random.Generator = 0) -> np.ndarray:
    """Samples at `density` inside `clusters` random discs covering about a third of the image, none outside."""
    rng = np.random.default_rng(seed)
    h, w = depth.shape
    yy, xx = np.mgrid[0:h, 0:w]
    inside = np.zeros(depth.shape, bool)
    radius = np.sqrt(h * w / (3.0 * np.pi * max(1, clusters)))
    for _ in range(max(1, clusters)):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = radius * rng.uniform(0.5, 1.5)
        inside |= (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
    keep = _valid(depth) & inside & (rng.random(depth.shape) < min(1.0, 3.0 * density))
    return np.where(keep, depth, 0.0).astype(np.float32)


def random_sensor_pattern(depth: np.ndarray, camera: PinholeCamera, rng: np.random.Generator) -> np.ndarray:
    """A training sample's sparse input: uniform random at 0.5-10% (log-uniform), a 16-128 beam scanner at a
    random height and field of view, or clusters; the kind drawn with odds 0.4 / 0.4 / 0.2."""
    pick = rng.random()
    if pick < 0.4:
        return random_pattern(depth, float(np.exp(rng.uniform(np.log(0.005), np.log(0.10)))), rng)
    if pick < 0.8:
        beams = int(rng.choice([16, 32, 64, 128]))
        low = rng.uniform(-30.0, -10.0)
        return scanner_pattern(depth, camera, beams=beams, height_m=float(rng.uniform(0.0, 1.0)),
                               fov_deg=(low, low + rng.uniform(15.0, 40.0)),
                               azimuth_step_deg=float(rng.uniform(0.08, 0.4)), seed=rng)
    return clustered_pattern(depth, float(np.exp(rng.uniform(np.log(0.01), np.log(0.10)))),
                             int(rng.integers(2, 10)), rng)
