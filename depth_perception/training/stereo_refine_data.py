"""Training samples for the refinement of the classical sweep (`models.stereo_refine`) from KITTI-layout drives.

Each frame's left/right pair is run through a prior function once (the classical sweep, given by the caller:
training does not import the pipelines), its holes filled as the engine's runtime fills them
(`geometry.infill.stereo_prior`), and kept in memory and in a cache file beside the run, so a resumed or
repeated run does not sweep again. Samples are random full-width strips of `height` rows (the engine's runtime
tiles are full-width strips too, so the right view's matches stay inside), with the intrinsics shifted to the
strip; supervision is the drive's ground-truth depth.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..geometry.camera import PinholeCamera
from ..geometry.infill import STEREO_HOLE_FILLS, snap_depth_edges, stereo_prior
from ..geometry.plane_sweep import rectified_pose
from ..utils import progress
from .stereo_data import LEFT, RIGHT, drive_baseline, drive_depth, image_tensor, open_drives

# (left RGB, right RGB, left camera, baseline m, min_depth, max_depth) -> (depth (H, W) m, NaN holes; confidence)
PriorFn = Callable[[np.ndarray, np.ndarray, PinholeCamera, float, float, float], tuple[np.ndarray, np.ndarray]]
MIN_SWEEP_DEPTH = 0.3
CACHE_VERSION = 1


class StereoRefineDataset(Dataset):
    """Samples (reference, sources, intrinsics, poses, prior_depth, prior_confidence, depth) as full-width strips.

    `drives`: drive folders / roots or readers; every frame must be at least `height` rows tall. `prior_fn`: the
    classical sweep, run over each frame's `sweep_range`. `cache`: a .npz file for the priors (written once,
    atomically; reused when its key, the drives, frames and `prior_key`, matches). `frame_step`: use every n-th
    frame. `hole_fill`: how the sweep's holes are filled ("rows" or "guided", as the engine's sidecar says).
    `edge_snap`: the sweep's depth steps moved onto the image's colour edges before the fill, as the stereo
    pipeline's `edge_snap` does at run time.
    """

    def __init__(self, drives: Sequence[Any], height: int, prior_fn: PriorFn, max_depth: float = 200.0,
                 frame_step: int = 1, cache: str | Path | None = None, prior_key: str = "",
                 augment: bool = True, hole_fill: str = "rows", edge_snap: bool = False) -> None:
        if height < 8 or height % 8:
            raise ValueError(f"height must be a positive multiple of 8, got {height}")
        if frame_step < 1:
            raise ValueError(f"frame_step must be >= 1, got {frame_step}")
        if hole_fill not in STEREO_HOLE_FILLS:
            raise ValueError(f"hole_fill must be one of {STEREO_HOLE_FILLS}, got {hole_fill!r}")
        self.height, self.max_depth, self.augment, self.hole_fill = height, max_depth, augment, hole_fill
        self.edge_snap = edge_snap
        self.drives = open_drives(drives)
        self.index = [(d, i) for d, drive in enumerate(self.drives) for i in range(0, drive.num_frames, frame_step)]
        if not self.index:
            raise ValueError("no frames in the stereo drives")
        fill_key = [f"hole_fill={hole_fill}"] if hole_fill != "rows" else []  # row-filled caches keep their key
        fill_key += ["edge_snap"] if edge_snap else []
        key = "\n".join([f"v{CACHE_VERSION}", prior_key] + fill_key + [f"{getattr(self.drives[d], 'path', d)}:{i}"
                                                            for d, i in self.index])
        self.key = hashlib.sha256(key.encode()).hexdigest()
        self.priors = self._load(cache) if cache is not None else None
        if self.priors is None:
            self.priors = self._sweep(prior_fn)
            if cache is not None:
                self._save(cache)

    def _load(self, cache: str | Path) -> list[tuple[np.ndarray, np.ndarray]] | None:
        path = Path(cache)
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != self.key:
                return None
            return [(z[f"depth_{n}"], z[f"conf_{n}"]) for n in range(len(self.index))]

    def _save(self, cache: str | Path) -> None:
        path = Path(cache)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        arrays: dict[str, Any] = {"key": np.array(self.key)}
        for n, (depth, conf) in enumerate(self.priors or []):
            arrays[f"depth_{n}"], arrays[f"conf_{n}"] = depth, conf
        np.savez(tmp, **arrays)
        os.replace(tmp, path)

    def _sweep(self, prior_fn: PriorFn) -> list[tuple[np.ndarray, np.ndarray]]:
        priors = []
        for d, i in progress(self.index, desc="classical priors"):
            drive = self.drives[d]
            left, right = drive.image(LEFT, i), drive.image(RIGHT, i)
            cam = drive.calib.cam(LEFT)
            if left.shape[0] < self.height:
                raise ValueError(f"frame {i} of drive {d} is {left.shape[0]} rows, fewer than the strip's "
                                 f"{self.height}")
            baseline = drive_baseline(drive)
            lo, hi = self.sweep_range(drive_depth(drive, i, left.shape[1], left.shape[0]))
            depth, conf = prior_fn(left, right, cam, baseline, lo, hi)
            if self.edge_snap:
                depth = snap_depth_edges(left, depth, cam.fx * baseline)
            filled, conf = stereo_prior(depth, conf, cam.fx * baseline, self.max_depth,
                                        image=left if self.hole_fill == "guided" else None)
            priors.append((filled.astype(np.float16), (conf * 255).round().astype(np.uint8)))
        return priors

    def sweep_range(self, gt: np.ndarray) -> tuple[float, float]:
        """The sweep's depth range for a frame: its ground truth's, widened (0.7x the nearest, 1.4x the farthest),
        as the real-scene evaluation sets it and as a user sets min_depth / max_depth for their scene."""
        valid = gt[(gt > 0) & (gt <= self.max_depth)]
        if valid.size == 0:
            return 1.0, min(80.0, self.max_depth)
        lo = max(MIN_SWEEP_DEPTH, 0.7 * float(valid.min()))
        return lo, max(lo * 2.0, min(self.max_depth, 1.4 * float(valid.max())))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        d, i = self.index[item]
        drive = self.drives[d]
        left, right = drive.image(LEFT, i), drive.image(RIGHT, i)
        cam = drive.calib.cam(LEFT)
        H, W = left.shape[0], left.shape[1] - left.shape[1] % 8  # the network's sides are multiples of 8
        prior, conf = self.priors[item]
        depth = drive_depth(drive, i, left.shape[1], H)[:, :W]
        depth[depth > self.max_depth] = 0.0
        rng = np.random.default_rng(item * 7919 + int(torch.randint(0, 1 << 30, (1,))))
        y = int(rng.integers(0, H - self.height + 1)) if self.augment else (H - self.height) // 2
        rows = np.s_[y:y + self.height, :W]
        K = cam.K.astype(np.float32).copy()
        K[1, 2] -= y
        ref, src = image_tensor(left[rows], W, self.height), image_tensor(right[rows], W, self.height)
        if self.augment:  # the same gain on both views (their matching must stay consistent), own noise each
            gain = float(rng.uniform(0.7, 1.3))
            ref = (ref * gain + 0.01 * torch.randn_like(ref)).clamp(0, 1)
            src = (src * gain + 0.01 * torch.randn_like(src)).clamp(0, 1)
        return {
            "reference": ref,
            "sources": src[None],
            "intrinsics": torch.from_numpy(K),
            "poses": torch.from_numpy(rectified_pose(drive_baseline(drive)).astype(np.float32)[None]),
            "prior_depth": torch.from_numpy(prior[rows].astype(np.float32))[None],
            "prior_confidence": torch.from_numpy(conf[rows].astype(np.float32) / 255.0)[None],
            "depth": torch.from_numpy(np.ascontiguousarray(depth[rows]))[None],
        }
