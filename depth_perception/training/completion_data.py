"""Depth-completion samples from KITTI-layout drives: RGB + sparse LiDAR depth in, ground-truth depth as target.

Layout (KITTI depth completion over KITTI raw, or our synthetic drives written the same way): the image from
`image_0X/data`, the input from `proj_depth/velodyne_raw/image_0X` (else the raw velodyne scan projected here),
the target from `proj_depth/groundtruth/image_0X` (0 = none). Frames without a ground-truth file (real KITTI
lacks the first and last five of each drive) are left out. Augmentation as NLSPN's KITTI recipe, trimmed:
remove the top rows (no LiDAR there), random crop, horizontal flip, colour jitter (brightness, contrast,
saturation). `scale` resizes everything first (depth maps by scattering their samples, never interpolating).
Two options of ours for inputs unlike the training drives: `sensor_patterns` (a share of the samples) replaces
the LiDAR input by a pattern drawn from the ground truth (`data.sparse_patterns.random_sensor_pattern`: random
density, 16-128 beam scanners, clusters), and `prior` adds the classical in-fill of the sparse input as
"prior_depth" (computed on the crop, as the pipeline computes it at the engine's size).
Real KITTI keeps the depth maps apart from the raw drives: `depth_root` (the folder holding `train/` and
`val/` of data_depth_annotated + data_depth_velodyne, merged) pairs each raw drive with its depth folder.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..data.sparse_patterns import random_sensor_pattern
from ..geometry.infill import COMPLETION_PRIORS, completion_prior
from ..geometry.projection import points_to_sparse_depth
from ..geometry.resample import resize_depth
from ..geometry.se3 import transform_points
from .stereo_data import open_drives


def velodyne_sparse_depth(drive: Any, cam: int, i: int) -> np.ndarray | None:
    """The raw velodyne scan of frame i projected into camera `cam` (0 = none); None without velodyne data."""
    if not getattr(drive, "has_velodyne", False):
        return None
    points = drive.velodyne(i)[:, :3].astype(np.float64)
    T = drive.calib.T_cam_velo(cam)
    in_cam = transform_points(T, points)
    return points_to_sparse_depth(in_cam.astype(np.float32), drive.calib.cam(cam), min_depth=0.5)


def frame_sparse_depth(drive: Any, cam: int, i: int) -> np.ndarray:
    """The network input of a frame: proj_depth/velodyne_raw, else the projected scan; ValueError if neither."""
    sparse = drive.sparse_depth(cam, i)
    if sparse is None:
        sparse = velodyne_sparse_depth(drive, cam, i)
    if sparse is None:
        raise ValueError(f"{getattr(drive, 'path', drive)}: frame {i} camera {cam} has no sparse depth "
                         "(proj_depth/velodyne_raw) and no velodyne scan")
    return np.nan_to_num(np.asarray(sparse, np.float32), nan=0.0)


def open_completion_drives(sources: Sequence[Any], depth_root: str | Path | None = None) -> list[Any]:
    """Drive readers for `sources`; with `depth_root`, each KITTI raw drive reads its depth maps from
    `depth_root/{train,val,.}/<drive name>/proj_depth` (drives without such a folder are left out)."""
    drives = open_drives(sources)
    if depth_root is None:
        return drives
    from ..data.kitti import KittiRawDrive

    root = Path(depth_root)
    if not root.is_dir():
        raise FileNotFoundError(f"depth root not found: {root}")
    out = []
    for drive in drives:
        if not isinstance(drive, KittiRawDrive):
            out.append(drive)
            continue
        found = next((c for c in (root / "train" / drive.name, root / "val" / drive.name, root / drive.name)
                      if (c / "proj_depth").is_dir()), None)
        if found is not None:
            out.append(KittiRawDrive(drive.path, found))
    if not out:
        raise ValueError(f"none of the {len(drives)} drives has a proj_depth folder under {root}")
    return out


def has_groundtruth(drive: Any, cam: int, i: int) -> bool:
    """Whether frame i has a ground-truth file; readers without KittiRawDrive's layout are asked directly."""
    depth_dir = getattr(drive, "depth_dir", None)
    if depth_dir is not None:
        return (Path(depth_dir) / "proj_depth" / "groundtruth" / f"image_{cam:02d}" / f"{i:010d}.png").is_file()
    return drive.groundtruth_depth(cam, i) is not None


class CompletionDriveDataset(Dataset):
    """Samples {"image" (3, h, w) RGB / 255, "sparse_depth" (1, h, w) m, "depth" (1, h, w) m} at the crop size.

    `drives`: drive folders / roots, or readers with KittiRawDrive's interface. `cameras`: colour cameras used
    (both 02 and 03 by default, as KITTI depth completion). Ground truth beyond `max_depth` is ignored.
    """

    def __init__(
        self,
        drives: Sequence[Any],
        crop_height: int = 240,
        crop_width: int = 1216,
        top_crop: int = 0,
        scale: float = 1.0,
        cameras: Sequence[int] = (2, 3),
        max_depth: float = 90.0,
        augment: bool = True,
        depth_root: str | Path | None = None,
        sensor_patterns: float = 0.0,
        prior: str = "none",
    ) -> None:
        if crop_height < 16 or crop_width < 16:
            raise ValueError(f"crop must be at least 16x16, got {crop_height}x{crop_width}")
        if top_crop < 0:
            raise ValueError(f"top_crop must be >= 0, got {top_crop}")
        if not 0 < scale <= 4:
            raise ValueError(f"scale must be in (0, 4], got {scale}")
        if not 0.0 <= sensor_patterns <= 1.0:
            raise ValueError(f"sensor_patterns must be a share in [0, 1], got {sensor_patterns}")
        if prior not in COMPLETION_PRIORS:
            raise ValueError(f"prior must be one of {COMPLETION_PRIORS}, got {prior!r}")
        self.sensor_patterns, self.prior = sensor_patterns, prior
        self.crop_height, self.crop_width = crop_height, crop_width
        self.top_crop, self.scale, self.max_depth, self.augment = top_crop, scale, max_depth, augment
        self.drives = open_completion_drives(drives, depth_root)
        self.index: list[tuple[int, int, int]] = []
        for d, drive in enumerate(self.drives):
            cams = [c for c in cameras if c in getattr(drive, "cameras", cameras)]
            for cam in cams:
                self.index.extend((d, cam, i) for i in range(drive.num_frames) if has_groundtruth(drive, cam, i))

    def __len__(self) -> int:
        return len(self.index)

    def _load(self, d: int, cam: int, i: int, rng: np.random.Generator | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Image, sparse input and ground truth after scale and top crop; with `rng`, maybe a sensor pattern."""
        drive = self.drives[d]
        image = np.asarray(drive.image(cam, i))
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, 2)
        sparse = frame_sparse_depth(drive, cam, i)
        gt = drive.groundtruth_depth(cam, i)
        gt = np.zeros(sparse.shape, np.float32) if gt is None else np.nan_to_num(np.asarray(gt, np.float32), nan=0.0)
        if self.scale != 1.0:
            h, w = image.shape[:2]
            sw, sh = max(1, round(w * self.scale)), max(1, round(h * self.scale))
            image = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR)
            sparse, gt = resize_depth(sparse, sw, sh), resize_depth(gt, sw, sh)
        if rng is not None and self.sensor_patterns > 0 and rng.random() < self.sensor_patterns and (gt > 0).any():
            camera = drive.calib.cam(cam).scaled(gt.shape[1], gt.shape[0])
            sparse = random_sensor_pattern(gt, camera, rng)
        top = round(self.top_crop * self.scale)
        return image[top:], sparse[top:], gt[top:]

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        d, cam, i = self.index[item]
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,))))
        image, sparse, gt = self._load(d, cam, i, rng if self.augment else None)
        h, w = image.shape[:2]
        ch, cw = self.crop_height, self.crop_width
        if h < ch or w < cw:
            raise ValueError(f"{getattr(self.drives[d], 'path', 'drive')} frame {i}: image {w}x{h} after the top crop "
                             f"and scale is smaller than the crop {cw}x{ch}; lower --height/--width or --top-crop")
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,))))
        if self.augment:
            y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        else:  # bottom-centre, where the LiDAR looks
            y0, x0 = h - ch, (w - cw) // 2
        image = image[y0:y0 + ch, x0:x0 + cw].astype(np.float32) / 255.0
        sparse = sparse[y0:y0 + ch, x0:x0 + cw]
        gt = gt[y0:y0 + ch, x0:x0 + cw].copy()
        gt[gt > self.max_depth] = 0.0
        sparse = np.where(sparse > self.max_depth, 0.0, sparse)
        if self.augment:
            if rng.random() < 0.5:
                image, sparse, gt = image[:, ::-1], sparse[:, ::-1], gt[:, ::-1]
            image = colour_jitter(image, rng)
        sparse = np.ascontiguousarray(sparse, dtype=np.float32)
        sample = {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "sparse_depth": torch.from_numpy(sparse)[None],
            "depth": torch.from_numpy(np.ascontiguousarray(gt, dtype=np.float32))[None],
        }
        if self.prior != "none":  # the in-fill of the crop as the network will see it (flipped, jittered)
            sample["prior_depth"] = torch.from_numpy(completion_prior(self.prior, image, sparse))[None]
        return sample


def colour_jitter(image: np.ndarray, rng: np.random.Generator, strength: float = 0.4) -> np.ndarray:
    """Brightness, contrast and saturation each scaled by a factor in [1 - strength, 1 + strength]."""
    b, c, s = rng.uniform(1 - strength, 1 + strength, 3)
    img = image * b
    img = (img - img.mean()) * c + img.mean()
    grey = img @ np.array([0.299, 0.587, 0.114], np.float32)
    img = (img - grey[..., None]) * s + grey[..., None]
    return np.clip(img, 0.0, 1.0).astype(np.float32)
