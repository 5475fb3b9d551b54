"""Training samples for the plane-sweep network from KITTI-layout drives (synthetic or real KITTI raw).

Each sample: the left colour camera (02) as reference; source views are the right camera (03) at the same
instant (T_src_ref = [I | (-baseline, 0, 0)]) and, when the model takes more views, neighbouring left frames
with their relative poses from `KittiRawDrive.cam_poses`. Supervision: the drive's ground-truth depth
(dense on synthetic drives, projected LiDAR on KITTI: 0 = none), falling back to the velodyne sparse depth,
and normals where the drive has them (synthetic). Images are resized to the network size, intrinsics with them.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..geometry.plane_sweep import rectified_pose
from ..geometry.projection import points_to_sparse_depth
from ..geometry.resample import resize_depth
from ..geometry.se3 import invert_transform

LEFT, RIGHT = 2, 3


def find_drives(paths: Sequence[str | Path]) -> list[Path]:
    """Drive folders (with image_02/data) under each path, or the paths themselves."""
    drives: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"data path not found: {p}")
        if (p / "image_02" / "data").is_dir():
            drives.append(p)
        else:  # image_02/data, not proj_depth/*/image_02
            drives.extend(sorted(d.parent.parent for d in p.rglob("image_02/data") if d.is_dir()))
    if not drives:
        raise ValueError(f"no KITTI-layout drives (folders with image_02/) under {[str(p) for p in paths]}")
    return sorted(set(drives))


def open_drive(path: Path):
    from ..data.kitti import KittiRawDrive

    return KittiRawDrive(path)


def open_drives(sources: Sequence[Any]) -> list[Any]:
    """Drive readers for folders (searched with `find_drives`); objects that already are drives pass through."""
    paths = [s for s in sources if isinstance(s, (str, Path))]
    drives = [s for s in sources if not isinstance(s, (str, Path))]
    return drives + ([open_drive(p) for p in find_drives(paths)] if paths else [])


def drive_baseline(drive: Any) -> float:
    """Stereo baseline (cameras 02 -> 03) of a drive; KittiCalib exposes it as a method, other readers as a value."""
    b = drive.calib.baseline
    return float(b(LEFT, RIGHT) if callable(b) else b)


def drive_depth(drive: Any, i: int, width: int, height: int) -> np.ndarray:
    """Ground truth for frame i at (width, height): the drive's groundtruth depth, else its projected LiDAR
    (proj_depth/velodyne_raw), else the raw velodyne scan projected here, else all zeros (no supervision)."""
    depth = drive.groundtruth_depth(LEFT, i)
    if depth is None or not np.any(np.nan_to_num(depth) > 0):
        depth = drive.sparse_depth(LEFT, i)
    if depth is None and getattr(drive, "has_velodyne", False):
        cam = drive.calib.cam(LEFT)
        points = drive.velodyne(i)[:, :3].astype(np.float64)
        in_cam = points @ drive.calib.T_cam_velo(LEFT)[:3, :3].T + drive.calib.T_cam_velo(LEFT)[:3, 3]
        depth = points_to_sparse_depth(in_cam.astype(np.float32), cam, min_depth=0.5)
    if depth is None:
        return np.zeros((height, width), np.float32)
    return resize_depth(depth, width, height)


def image_tensor(img: np.ndarray, width: int, height: int) -> torch.Tensor:
    img = cv2.resize(np.asarray(img), (width, height), interpolation=cv2.INTER_AREA)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, 2)
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float() / 255.0


class StereoDriveDataset(Dataset):
    """Samples (reference, sources, intrinsics, poses, depth, normal) at a fixed network size.

    `drives`: drive folders / roots, or drive readers with KittiRawDrive's interface.
    """

    def __init__(
        self,
        drives: Sequence[Any],
        height: int,
        width: int,
        views: int = 1,
        max_depth: float = 80.0,
        frame_step: int = 1,
        augment: bool = True,
    ) -> None:
        if views < 1:
            raise ValueError(f"views must be >= 1, got {views}")
        self.height, self.width, self.views = height, width, views
        self.max_depth = max_depth
        self.frame_step = frame_step
        self.augment = augment
        self.drives = open_drives(drives)
        self.index: list[tuple[int, int]] = []
        margin = max((abs(o) for o in self._temporal_offsets()), default=0)
        for d, drive in enumerate(self.drives):
            self.index.extend((d, i) for i in range(margin, drive.num_frames - margin))
        self._poses: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.index)

    def _temporal_offsets(self) -> list[int]:
        offs: list[int] = []
        k = 1
        while len(offs) < self.views - 1:
            offs.append(-k * self.frame_step)
            if len(offs) < self.views - 1:
                offs.append(k * self.frame_step)
            k += 1
        return offs

    def _cam_poses(self, d: int) -> np.ndarray:
        if d not in self._poses:
            self._poses[d] = np.asarray(self.drives[d].cam_poses(LEFT), dtype=np.float64)
        return self._poses[d]

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        d, i = self.index[item]
        drive = self.drives[d]
        cam = drive.calib.cam(LEFT)
        W, H = self.width, self.height
        K = cam.scaled(W, H).K.astype(np.float32)
        ref = image_tensor(drive.image(LEFT, i), W, H)
        sources = [image_tensor(drive.image(RIGHT, i), W, H)]
        poses = [rectified_pose(drive_baseline(drive))]
        if self.views > 1:
            T_world = self._cam_poses(d)
            for off in self._temporal_offsets():
                j = i + off
                sources.append(image_tensor(drive.image(LEFT, j), W, H))
                poses.append(invert_transform(T_world[j]) @ T_world[i])
        depth = drive_depth(drive, i, W, H)
        depth[depth > self.max_depth] = 0.0
        normals = drive.normals(LEFT, i)
        if normals is not None:
            normal = cv2.resize(np.nan_to_num(np.asarray(normals, np.float32)), (W, H), interpolation=cv2.INTER_NEAREST)
            normal_t = torch.from_numpy(np.ascontiguousarray(normal.transpose(2, 0, 1)))
        else:
            normal_t = torch.zeros(3, H, W)
        src = torch.stack(sources, 0)
        if self.augment:
            # Photometric jitter shared by all views (their matching must stay consistent).
            g = torch.Generator().manual_seed(item * 7919 + int(torch.randint(0, 1 << 30, (1,))))
            gain = 0.8 + 0.4 * torch.rand(1, generator=g)
            ref, src = (ref * gain).clamp(0, 1), (src * gain).clamp(0, 1)
        return {
            "reference": ref,
            "sources": src,
            "intrinsics": torch.from_numpy(K),
            "poses": torch.from_numpy(np.stack(poses).astype(np.float32)),
            "depth": torch.from_numpy(depth)[None],
            "normal": normal_t.float(),
        }
