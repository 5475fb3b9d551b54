"""Is a self-supervised monocular run learning ego-motion? Its pose network against the true motion of fixed
frame pairs of synthetic drives, measured while it trains.

`PoseProbe.from_drives(paths, height, width, pairs)` picks `pairs` frame pairs (t, t+1) spread over the drives
that carry their true camera poses (`synthetic/poses_cam02.txt`, written by `depth-perception synth`), at the
training size. `probe(net)` runs the pose network on them and returns:

- `pose_cos`: mean cosine between the predicted and the true translation of T_{t+1<-t} (1 = the right direction;
  a car driving forward has t_z < 0: the scene comes closer);
- `pose_scale`: median |t_true| / |t_pred|, and `depth_scale`: median over the pairs of median(ground truth) /
  median(predicted depth) on frame t. Monocular depth and motion share one unknown scale: a run that learns the
  geometry has the two equal, whatever their value;
- `pose_cos_train`: the cosine with BatchNorm in training mode (batch statistics, as the loss sees the pose), on
  a copy so the running statistics are untouched; far from `pose_cos` when eval-mode BatchNorm sees another pose.

The Trainer calls it every `probe_every` steps (training.trainer.TrainConfig), writes the figures into the
scalar log and shows the cosine in the progress bar, so a run that starts to drift is seen when it drifts.
`tools/diagnose_mono_pose.py` prints the same figures pair by pair for a checkpoint.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

POSES_FILE = Path("synthetic") / "poses_cam02.txt"
CAMERA = 2  # the left colour camera, whose poses synth writes


@dataclass
class ProbePair:
    drive: str
    frame: int  # t; the source is t + 1
    target: Tensor  # (3, H, W) RGB / 255 at the training size
    source: Tensor
    t_true: np.ndarray  # translation of T_{t+1<-t}, metres, optical frame
    gt_depth: np.ndarray  # (H, W) metres at frame t, 0 = none


def pair_translation(poses: np.ndarray, i: int) -> np.ndarray:
    """The translation of T_{i+1<-i} (camera i to camera i+1) from camera-to-world poses (N, 4, 4)."""
    return (np.linalg.inv(poses[i + 1]) @ poses[i])[:3, 3]


def pose_figures(t_true: np.ndarray, t_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pair: the cosine between the translations (N, 3), and |t_true| / |t_pred|."""
    t_true, t_pred = np.asarray(t_true, np.float64), np.asarray(t_pred, np.float64)
    nt, npred = np.linalg.norm(t_true, axis=1), np.linalg.norm(t_pred, axis=1)
    cos = (t_true * t_pred).sum(1) / (nt * npred + 1e-12)
    return cos, nt / (npred + 1e-12)


class PoseProbe:
    """Fixed frame pairs with known motion; calling it on a MonoDepthNet gives the figures above."""

    def __init__(self, pairs: Sequence[ProbePair]) -> None:
        if not pairs:
            raise ValueError("the pose probe has no frame pairs")
        self.pairs = list(pairs)
        self.targets = torch.stack([p.target for p in self.pairs])
        self.sources = torch.stack([p.source for p in self.pairs])
        self.t_true = np.stack([p.t_true for p in self.pairs])

    @classmethod
    def from_drives(cls, paths: Sequence[str | Path], height: int, width: int, pairs: int = 12,
                    min_motion_m: float = 0.05) -> PoseProbe:
        """`pairs` frame pairs spread evenly over the synthetic drives among `paths` (roots or drive folders);
        pairs moving less than `min_motion_m` are left out (their direction is noise). ValueError if none."""
        from ..data.kitti import KittiRawDrive, read_poses_file
        from ..geometry.resample import resize_depth
        from .mono_data import image_tensor
        from .stereo_data import find_drives

        if pairs < 1:
            raise ValueError(f"the pose probe needs >= 1 pair, got {pairs}")
        candidates: list[tuple[Path, int]] = []
        poses_of: dict[Path, np.ndarray] = {}
        for drive in find_drives([str(p) for p in paths]):
            if not (drive / POSES_FILE).is_file():
                continue
            poses = read_poses_file(drive / POSES_FILE)
            poses_of[drive] = poses
            candidates.extend((drive, i) for i in range(len(poses) - 1)
                              if np.linalg.norm(pair_translation(poses, i)) >= min_motion_m)
        if not candidates:
            raise ValueError(f"no synthetic drive with moving frame pairs ({POSES_FILE}) in {list(map(str, paths))}: "
                             "the pose probe needs drives from `depth-perception synth`")
        picks = sorted({int(round(x)) for x in np.linspace(0, len(candidates) - 1, min(pairs, len(candidates)))})
        readers: dict[Path, Any] = {}
        out = []
        for k in picks:
            drive, i = candidates[k]
            reader = readers.setdefault(drive, KittiRawDrive(drive))
            gt = reader.groundtruth_depth(CAMERA, i)
            gt = np.zeros((height, width), np.float32) if gt is None else resize_depth(gt, width, height)
            out.append(ProbePair(str(drive), i, image_tensor(reader.image(CAMERA, i), width, height),
                                 image_tensor(reader.image(CAMERA, i + 1), width, height),
                                 pair_translation(poses_of[drive], i), gt))
        return cls(out)

    def predict(self, net: nn.Module, train_mode_bn: bool = False) -> tuple[np.ndarray, Tensor]:
        """Predicted translations (N, 3) and depth of the targets (N, 1, H, W), without touching `net`'s state."""
        from ..models.mono import disp_to_depth

        if getattr(net, "pose", None) is None:
            raise ValueError("the pose probe needs a network with a pose net (train mono --mode mono)")
        device = next(net.parameters()).device
        targets, sources = self.targets.to(device), self.sources.to(device)
        was_training = net.training
        try:
            with torch.no_grad():
                if train_mode_bn:  # a copy in training mode: batch statistics, running ones left as they were
                    pose = copy.deepcopy(net.pose).train()
                    _, translation = pose(targets, sources)
                    return translation.float().cpu().numpy(), torch.empty(0)
                net.eval()
                _, translation = net.pose(targets, sources)
                _, depth = disp_to_depth(net.train_forward(targets)[0], net.min_depth, net.max_depth)
                return translation.float().cpu().numpy(), depth.float().cpu()
        finally:
            net.train(was_training)

    def __call__(self, net: nn.Module) -> dict[str, float]:
        t_pred, depth = self.predict(net)
        cos, scale = pose_figures(self.t_true, t_pred)
        depth_scales = []
        for p, d in zip(self.pairs, depth[:, 0].numpy(), strict=True):
            valid = p.gt_depth > 0
            if valid.any():
                depth_scales.append(float(np.median(p.gt_depth[valid]) / max(np.median(d[valid]), 1e-9)))
        cos_train, _ = pose_figures(self.t_true, self.predict(net, train_mode_bn=True)[0])
        return {"pose_cos": float(cos.mean()), "pose_scale": float(np.median(scale)),
                "depth_scale": float(np.median(depth_scales)) if depth_scales else float("nan"),
                "pose_cos_train": float(cos_train.mean())}


__all__ = ["PoseProbe", "ProbePair", "pair_translation", "pose_figures"]
