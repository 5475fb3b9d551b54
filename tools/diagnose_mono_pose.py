#!/usr/bin/env python3
"""Is a self-supervised monocular run learning ego-motion? Its pose network and depth against a synthetic drive's
ground truth, frame pair by frame pair.

    python tools/diagnose_mono_pose.py runs/cpu_mono_mono data/cpu_train/2011_09_26/2011_09_26_drive_0000_sync

The same figures as the training-time pose probe (depth_perception.training.pose_probe), pair by pair.
For each pair (t, t+1) it prints the true and predicted translation of T_{t+1<-t} (camera optical frame), their
cosine and length ratio, and the depth's median ratio to ground truth: a run that learns has cosines near 1 and
the two ratios equal (one scale for depth and motion). Then the mean photometric error (0.85 SSIM + 0.15 L1, the
training loss) of warping frame t+1 into t with: the true pose and depth (what the loss can reach), no motion
(what auto-masking compares with), and the run's own pose and depth. A run whose own warp is no better than no
motion gets its gradient from almost nothing: it is stuck. Needs a drive from `depth-perception synth` (its
synthetic/poses_cam02.txt) and a checkpoint folder of `train mono --mode mono` (the pose network is in it).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="checkpoint folder of a monocular run (checkpoint.json + .safetensors)")
    parser.add_argument("drive", help="a synthetic drive folder (image_02, proj_depth, synthetic/poses_cam02.txt)")
    parser.add_argument("--pairs", type=int, default=8, help="frame pairs, spread over the drive (default 8)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    try:
        report = diagnose(Path(args.run), Path(args.drive), args.pairs)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"diagnose_mono_pose: {exc}", file=sys.stderr)
        return 2
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def diagnose(run: Path, drive_dir: Path, pairs: int) -> dict:
    import numpy as np
    import torch

    from depth_perception.data.kitti import KittiRawDrive, read_depth_png, read_poses_file
    from depth_perception.models.mono import disp_to_depth, pose_to_matrix
    from depth_perception.models.registry import build_model
    from depth_perception.training.checkpoint import load_weights, read_meta
    from depth_perception.training.mono_data import image_tensor
    from depth_perception.training.mono_losses import photometric_error, warp_source_to_target
    from depth_perception.training.pose_probe import pose_figures

    meta = read_meta(run)
    config = dict(meta["model"]["config"])
    if not config.get("pose_net"):
        raise ValueError(f"{run} has no pose network (mode {meta.get('mode')!r}): diagnose a --mode mono run")
    net = build_model(meta["model"]["name"], **config)
    load_weights(run, net)
    net.eval()
    h, w = config["height"], config["width"]
    poses_file = drive_dir / "synthetic" / "poses_cam02.txt"
    if not poses_file.is_file():
        raise FileNotFoundError(f"{poses_file} not found: the drive must come from `depth-perception synth`")
    poses = read_poses_file(poses_file)  # camera -> world
    drive = KittiRawDrive(drive_dir)
    K = torch.from_numpy(drive.calib.cam(2).scaled(w, h).K.astype(np.float32))[None]

    def image(i: int) -> torch.Tensor:  # as the training samples see it
        return image_tensor(drive.image(2, i), w, h)[None]

    def gt_depth(i: int) -> np.ndarray:
        gt = read_depth_png(drive_dir / "proj_depth" / "groundtruth" / "image_02" / f"{i:010d}.png")
        if gt.shape != (h, w):
            raise ValueError(f"ground truth is {gt.shape[1]}x{gt.shape[0]}, the run trains at {w}x{h}: make the "
                             f"drive with synth --width {w} --height {h}")
        return gt

    def photo(src: torch.Tensor, tgt: torch.Tensor, depth: torch.Tensor, T: np.ndarray | torch.Tensor) -> float:
        T = torch.as_tensor(np.asarray(T, np.float32))[None] if isinstance(T, np.ndarray) else T
        warped, _ = warp_source_to_target(src, depth, K, T)
        return float(photometric_error(warped, tgt).mean())

    n = len(poses) - 1
    frames = sorted({int(round(x)) for x in np.linspace(1, n - 2, max(1, pairs))})
    rows = []
    print(f"{'pair':>9} {'true t (m)':>24} {'predicted t':>26} {'cos':>5} {'|t| ratio':>9} {'depth ratio':>11}")
    with torch.no_grad():
        for i in frames:
            tgt, src = image(i), image(i + 1)
            axisangle, translation = net.pose(tgt, src)
            T_pred = pose_to_matrix(axisangle, translation)
            _, depth = disp_to_depth(net.train_forward(tgt)[0], net.min_depth, net.max_depth)
            T_true = np.linalg.inv(poses[i + 1]) @ poses[i]
            gt = gt_depth(i)
            valid = gt > 0
            t_true, t_pred = T_true[:3, 3], T_pred[0, :3, 3].numpy().astype(np.float64)
            cos, t_ratio = (float(v[0]) for v in pose_figures(t_true[None], t_pred[None]))
            d_ratio = float(np.median(gt[valid]) / np.median(depth[0, 0].numpy()[valid]))
            gt_t = torch.from_numpy(np.where(valid, gt, 80.0).astype(np.float32))[None, None]
            row = {"frame": i, "t_true": t_true.round(4).tolist(), "t_pred": t_pred.round(4).tolist(), "cos": cos,
                   "t_ratio": t_ratio, "depth_ratio": d_ratio,
                   "photometric_true": photo(src, tgt, gt_t, T_true),
                   "photometric_identity": photo(src, tgt, gt_t, np.eye(4)),
                   "photometric_run": photo(src, tgt, depth, T_pred)}
            rows.append(row)
            print(f"{i:>4}->{i + 1:<4} {np.array2string(t_true, precision=2):>24} "
                  f"{np.array2string(t_pred, precision=3):>26} {cos:>5.2f} {t_ratio:>9.1f} {d_ratio:>11.1f}")
    mean = {k: float(np.mean([r[k] for r in rows])) for k in
            ("cos", "photometric_true", "photometric_identity", "photometric_run")}
    print(f"mean cosine of the translations: {mean['cos']:.2f} (1 = the right direction)")
    print(f"photometric error of the warp: true pose and depth {mean['photometric_true']:.4f}, no motion "
          f"{mean['photometric_identity']:.4f}, the run's own {mean['photometric_run']:.4f}")
    stuck = mean["photometric_run"] >= mean["photometric_identity"]
    print("verdict: " + ("stuck: the run's own warp is no better than no motion, so auto-masking keeps little "
                         "to learn from" if stuck else "learning: the run's warp beats no motion"))
    return {"run": str(run), "drive": str(drive_dir), "step": meta.get("step"), "pairs": rows, "mean": mean,
            "stuck": stuck}


if __name__ == "__main__":
    sys.exit(main())
