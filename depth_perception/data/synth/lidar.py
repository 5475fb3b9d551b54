"""A Velodyne HDL-64E-like spinning LiDAR: 64 beams from +2 to -24.9 degrees, 2083 azimuths a turn (10 Hz)."""
from __future__ import annotations

import numpy as np

from . import render as R
from . import world as W

# Upper block: 32 lasers at about 1/3 degree spacing; lower block: 32 at about 1/2 degree (HDL-64E S2 data sheet).
ELEVATIONS_DEG = np.concatenate([np.linspace(2.0, -8.33, 32), np.linspace(-8.83, -24.9, 32)])
AZIMUTHS = 2083  # per turn at 10 Hz (0.17 degrees)
MAX_RANGE = 120.0
MIN_RANGE = 2.5  # returns closer than this fall on the ego vehicle itself and are dropped, as KITTI's are rare


def lidar_rays(T_world_velo: np.ndarray, azimuths: int = AZIMUTHS) -> R.SpinningRays:
    return R.SpinningRays(np.deg2rad(ELEVATIONS_DEG), azimuths, T_world_velo, MAX_RANGE)


def sweep(rays: R.SpinningRays, world: W.World, objects: W.Objects, rng: np.random.Generator) -> np.ndarray:
    """One sweep (static world) as float32 (N, 4): x, y, z in the sensor frame and reflectance in [0, 1].

    Reflectance: the material's, dimmed with the incidence angle, with a little noise; ranges get 1 cm noise.
    No returns from glass, a few percent lost elsewhere (more at grazing incidence).
    """
    hits = R.cast_ground(rays, world.grid)
    R.cast_objects(rays, objects, hits)
    surf = R.surface(rays, hits, objects, world.grid, None)
    t = surf.t
    # Glass mirrors the beam away (no return); dark or grazing surfaces sometimes return too little light.
    glass = (surf.material == W.GLASS) | ((surf.overlay == W.GLASS) & (surf.coverage > 0.5))
    lost = rng.random(len(t)) < 0.02 + 0.1 * (surf.cos < 0.1)
    keep = np.flatnonzero((t > MIN_RANGE) & (t < MAX_RANGE) & ~glass & ~lost)
    idx, t = surf.index[keep], t[keep]
    mat, ov, cov = surf.material[keep], surf.overlay[keep], surf.coverage[keep]
    refl = W.MAT_REFLECTANCE[mat]
    refl = refl + cov * (W.MAT_REFLECTANCE[ov] - refl)
    refl = refl * (0.5 + 0.5 * surf.cos[keep]) + rng.normal(0.0, 0.02, len(idx)).astype(np.float32)
    t = t + rng.normal(0.0, 0.01, len(idx)).astype(np.float32)
    pts = rays.dirs_sensor.reshape(-1, 3)[idx] * t[:, None]
    return np.column_stack([pts, np.clip(refl, 0.0, 1.0)]).astype(np.float32)
