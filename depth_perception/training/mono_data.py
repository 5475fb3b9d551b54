"""Training samples for the monocular engine from KITTI raw drives (real or synthetic), monodepth2-style.

A sample is a target frame t of one colour camera (02 "l" or 03 "r") with its temporal neighbours t-1, t+1,
optionally the other camera at t (stereo, with T from the calibration), and optionally projected LiDAR depth
(supervised mode). Frames are listed by a monodepth2 split file (`<date>/<drive> <frame> l|r`, resolved under
the data roots) or are every frame with both neighbours. Augmentation as monodepth2: with probability 0.5 a
colour jitter (brightness, contrast, saturation 0.8-1.2, hue +-0.1) shared by all frames of the sample and fed
only to the networks (losses see the originals), and with probability 0.5 a horizontal flip of everything
(intrinsics and the stereo transform flipped with it).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..data.synth.objects import is_objects_drive
from ..geometry.projection import points_to_sparse_depth
from ..geometry.resample import resize_depth
from ..geometry.se3 import invert_transform, transform_points
from .stereo_data import find_drives, open_drive

SIDES = {"l": 2, "r": 3}
OTHER = {2: 3, 3: 2}
_FLIP = np.diag([-1.0, 1.0, 1.0, 1.0])


def lidar_depth(drive: Any, cam: int, i: int) -> np.ndarray | None:
    """Projected LiDAR depth at the camera's resolution (0 = none): proj_depth/velodyne_raw, else the raw scan."""
    depth = drive.sparse_depth(cam, i)
    if depth is None and getattr(drive, "has_velodyne", False):
        camera = drive.calib.cam(cam)
        pts = drive.velodyne(i)[:, :3].astype(np.float64)
        T = drive.calib.T_cam_velo(cam)
        depth = points_to_sparse_depth(transform_points(T, pts).astype(np.float32), camera, min_depth=0.5)
    return None if depth is None else np.nan_to_num(np.asarray(depth, np.float32))


SUPERVISION = ("auto", "lidar", "groundtruth")


def supervision_depth(drive: Any, cam: int, i: int, source: str = "auto") -> np.ndarray | None:
    """Depth that supervises `--mode supervised` (0 = none). `source` "auto": projected LiDAR, as Eigen et al.
    trained, else the drive's groundtruth depth (a synthetic drive written with `synth --no-lidar`: dense);
    "lidar" or "groundtruth": that one only (a synthetic drive has both, and its groundtruth is dense)."""
    if source not in SUPERVISION:
        raise ValueError(f"supervision must be one of {SUPERVISION}, got {source!r}")
    depth = lidar_depth(drive, cam, i) if source != "groundtruth" else None
    if depth is None and source != "lidar" and hasattr(drive, "groundtruth_depth"):
        depth = drive.groundtruth_depth(cam, i)
        depth = None if depth is None else np.nan_to_num(np.asarray(depth, np.float32))
    return depth


def eval_depth(drive: Any, cam: int, i: int) -> np.ndarray | None:
    """Ground truth for evaluation at native resolution (0 = none): the drive's groundtruth depth (dense on
    synthetic drives, the annotated maps on KITTI), else projected LiDAR (Eigen's raw-LiDAR protocol)."""
    depth = drive.groundtruth_depth(cam, i)
    if depth is not None and np.any(np.nan_to_num(depth) > 0):
        return np.nan_to_num(np.asarray(depth, np.float32))
    return lidar_depth(drive, cam, i)


def resolve_split(entries: Sequence[Any], roots: Sequence[str | Path]) -> list[tuple[Any, int, int]]:
    """monodepth2 split entries -> (drive reader, frame, camera); each folder is looked up under every root."""
    drives: dict[str, Any] = {}
    out = []
    for e in entries:
        if e.folder not in drives:
            found = next((Path(r) / e.folder for r in roots if (Path(r) / e.folder / "image_02").is_dir()), None)
            if found is None:
                raise FileNotFoundError(f"split folder {e.folder!r} not found under {[str(r) for r in roots]}")
            drives[e.folder] = open_drive(found)
        out.append((drives[e.folder], int(e.frame), e.cam))
    return out


def image_tensor(img: np.ndarray, width: int, height: int) -> Tensor:
    """uint8 (h, w[, 3]) -> float (3, height, width) in [0, 1] (area resampling when shrinking)."""
    img = np.asarray(img)
    if img.shape[:2] != (height, width):
        shrink = img.shape[1] > width
        img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, 2)
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float() / 255.0


def color_jitter(images: dict[str, Tensor], g: torch.Generator) -> dict[str, Tensor]:
    """One random brightness / contrast / saturation / hue change applied to every image of a sample."""
    b, c, s = (0.8 + 0.4 * torch.rand(3, generator=g)).tolist()
    hue = float(torch.rand(1, generator=g) * 0.2 - 0.1)
    cos, sin = np.cos(2 * np.pi * hue), np.sin(2 * np.pi * hue)
    # Hue rotation in YIQ space: a rotation of the chroma plane, the luma untouched.
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    rot = torch.tensor([[1.0, 0.0, 0.0], [0.0, cos, -sin], [0.0, sin, cos]], dtype=torch.float32)
    hue_m = torch.linalg.inv(to_yiq) @ rot @ to_yiq
    out = {}
    for k, img in images.items():
        x = img * b
        x = (x - x.mean()) * c + x.mean()
        grey = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).unsqueeze(0)
        x = (x - grey) * s + grey
        x = torch.einsum("ij,jhw->ihw", hue_m, x)
        out[k] = x.clamp(0, 1)
    return out


class MonoDataset(Dataset):
    """Samples for `train mono` at a fixed network size.

    Keys: `color_<f>` (3, H, W) originals for the losses, `aug_<f>` jittered copies for the networks, with f in
    `frame_ids` (0, -1, 1 by default) and "s" for the stereo partner; `K` (3, 3) at (H, W); `T_stereo` (4, 4)
    = T_partner_target; `depth_gt` (1, H, W) `supervision_depth` (0 = none), when `supervised`.
    `drives`: drive folders or roots, or readers with KittiRawDrive's interface; `split`: monodepth2 entries.
    `frame_ids` (0,) takes every frame alone, as supervised training needs no neighbours; only then are the stills
    of `synth --scene objects` drives accepted. `supervision`: where `depth_gt` comes from (`supervision_depth`).
    """

    def __init__(
        self,
        drives: Sequence[Any],
        height: int,
        width: int,
        frame_ids: Sequence[int] = (0, -1, 1),
        stereo: bool = False,
        supervised: bool = False,
        augment: bool = True,
        split: Sequence[Any] | None = None,
        sides: str = "lr",
        min_motion: float = 0.0,
        supervision: str = "auto",
    ) -> None:
        self.height, self.width = height, width
        self.frame_ids = tuple(int(f) for f in frame_ids)
        if 0 not in self.frame_ids:
            raise ValueError(f"frame_ids must contain 0 (the target), got {self.frame_ids}")
        self.stereo, self.supervised, self.augment, self.supervision = stereo, supervised, augment, supervision
        lo, hi = min(self.frame_ids), max(self.frame_ids)
        self.samples: list[tuple[Any, int, int]] = []
        if split is not None:
            roots = [d for d in drives if isinstance(d, (str, Path))]
            for drive, i, cam in resolve_split(split, roots):
                if 0 <= i + lo and i + hi < drive.num_frames:
                    self.samples.append((drive, i, cam))
        else:
            paths = [d for d in drives if isinstance(d, (str, Path))]
            readers = [d for d in drives if not isinstance(d, (str, Path))]
            readers += [open_drive(p) for p in find_drives(paths)] if paths else []
            stills = [str(r.path) for r in readers if is_objects_drive(getattr(r, "path", None))]
            if stills and self.frame_ids != (0,):
                raise ValueError(f"{stills[0]} holds independent scenes (synth --scene objects), not a video: "
                                 "self-supervised monocular training needs consecutive frames; leave objects "
                                 "drives out, or train with --mode supervised")
            for drive in readers:
                cams = [SIDES[s] for s in sides if SIDES[s] in drive.cameras]
                n = drive.num_frames
                self.samples.extend((drive, i, cam) for i in range(-lo, n - hi) for cam in cams)
        if stereo:
            self.samples = [s for s in self.samples if OTHER[s[2]] in s[0].cameras]
        if supervised:  # a drive with no depth would train on nothing and report a loss of 0
            firsts = {(id(d), cam): (d, cam) for d, _, cam in self.samples}.values()
            # the middle frame: real KITTI has no groundtruth at a drive's ends
            blind = sorted(str(getattr(d, "path", d)) for d, cam in firsts
                           if supervision_depth(d, cam, d.num_frames // 2, supervision) is None)
            if blind:
                wanted = {"auto": "no LiDAR (velodyne_points or proj_depth/velodyne_raw) and no "
                                  "proj_depth/groundtruth",
                          "lidar": "no LiDAR (velodyne_points or proj_depth/velodyne_raw)",
                          "groundtruth": "no proj_depth/groundtruth"}[supervision]
                raise ValueError(f"supervised training needs depth: {blind[0]} has {wanted}"
                                 + (f" ({len(blind) - 1} more drives likewise)" if len(blind) > 1 else ""))
        self.static_removed = 0
        if min_motion > 0 and len(self.frame_ids) > 1:  # a sample without neighbours has no motion
            moving = [s for s in self.samples if self._motion(s) >= min_motion]
            self.static_removed = len(self.samples) - len(moving)
            self.samples = moving

    def _motion(self, sample: tuple[Any, int, int]) -> float:
        """The smaller camera translation (m) from the target frame to any of its temporal neighbours."""
        drive, i, cam = sample
        key = (id(drive), cam)
        cache = self.__dict__.setdefault("_poses", {})
        if key not in cache:
            try:
                cache[key] = drive.cam_poses(cam)
            except (FileNotFoundError, ValueError) as exc:
                raise ValueError(f"static-frame removal needs camera poses: {exc}") from None
        poses = cache[key]
        return min(float(np.linalg.norm(poses[i + f][:3, 3] - poses[i][:3, 3])) for f in self.frame_ids if f != 0)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, item: int) -> dict[str, Tensor]:
        drive, i, cam = self.samples[item]
        W, H = self.width, self.height
        images = {str(f): image_tensor(drive.image(cam, i + f), W, H) for f in self.frame_ids}
        T_stereo = np.eye(4)
        if self.stereo:
            other = OTHER[cam]
            images["s"] = image_tensor(drive.image(other, i), W, H)
            calib = drive.calib
            T_stereo = calib.T_cami_cam0(other) @ invert_transform(calib.T_cami_cam0(cam))
        K = drive.calib.cam(cam).scaled(W, H).K
        depth = None
        if self.supervised:
            d = supervision_depth(drive, cam, i, self.supervision)
            depth = np.zeros((H, W), np.float32) if d is None else resize_depth(d, W, H)
        g = torch.Generator().manual_seed(int(torch.randint(0, 1 << 62, (1,))))
        flip = self.augment and bool(torch.rand(1, generator=g) < 0.5)
        if flip:
            images = {k: v.flip(-1) for k, v in images.items()}
            K = K.copy()
            K[0, 2] = W - 1 - K[0, 2]
            T_stereo = _FLIP @ T_stereo @ _FLIP
            depth = None if depth is None else np.ascontiguousarray(depth[:, ::-1])
        aug = color_jitter(images, g) if self.augment and bool(torch.rand(1, generator=g) < 0.5) else images
        sample = {f"color_{k}": v for k, v in images.items()}
        sample.update({f"aug_{k}": v for k, v in aug.items()})
        sample["K"] = torch.from_numpy(K.astype(np.float32))
        sample["T_stereo"] = torch.from_numpy(T_stereo.astype(np.float32))
        if depth is not None:
            sample["depth_gt"] = torch.from_numpy(depth)[None]
        return sample
