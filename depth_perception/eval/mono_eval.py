"""`depth-perception eval mono`: score a mono engine on KITTI-layout drives with monodepth2's protocol.

Frames: a monodepth2 split file (`--split`, entries resolved under the --data roots), else every `--stride`-th
frame of camera 02 of every drive. Ground truth: the drive's groundtruth depth, else projected LiDAR, at its
native resolution; the prediction's inverse depth is resized to it bilinearly. Scaling (`--scaling auto`):
per-image median scaling for relative engines, none for metric ones (sidecar `metric`); `camera_height`
scores the run-time scale recovery instead. Metrics: `eval.metrics` (Garg crop, depth cap 80 m), averaged
over images.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import DEPTH_KEYS, MAX_DEPTH, MIN_DEPTH, evaluate_depth, mean_metrics

SCALINGS = ("auto", "median", "none", "camera_height")


def _frames(data: Sequence[str | Path], split: str | None, stride: int, max_frames: int) -> list[tuple[Any, int, int]]:
    from ..training.mono_data import resolve_split
    from ..training.stereo_data import open_drives

    if split:
        from ..data.kitti import read_split

        return resolve_split(read_split(split), list(data))
    jobs: list[tuple[Any, int, int]] = []
    for drive in open_drives(list(data)):
        frames = list(range(0, drive.num_frames, stride))
        jobs.extend((drive, i, 2) for i in (frames[:max_frames] if max_frames > 0 else frames))
    return jobs


def evaluate_engine(
    engine: str | Path,
    data: Sequence[str | Path],
    split: str | None = None,
    scaling: str = "auto",
    crop: str = "garg",
    min_depth: float = MIN_DEPTH,
    max_depth: float = MAX_DEPTH,
    camera_height: float = 1.65,
    max_frames: int = 0,
    stride: int = 1,
    backend: str = "auto",
    device: str = "auto",
) -> dict[str, Any]:
    """Score an engine (artifact, checkpoint folder or "auto"); returns the report with DESIGN §7 keys."""
    from ..pipelines.mono import MonoPipeline, MonoPipelineConfig
    from ..training.mono_data import eval_depth
    from ..utils import progress

    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {SCALINGS}, got {scaling!r}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    pipe = MonoPipeline(MonoPipelineConfig(engine=str(engine), backend=backend, device=device,
                                           camera_height=camera_height, scale_recovery="none"))
    mode = scaling if scaling != "auto" else ("none" if pipe.metric else "median")
    jobs = _frames(data, split, stride, max_frames)
    if not jobs:
        raise ValueError("no frames to evaluate")
    rows, ratios, ms = [], [], []
    by_drive: dict[str, list[dict[str, float]]] = {}
    names = {id(d): str(getattr(d, "name", "drive")) for d, _, _ in jobs}
    if len(set(names.values())) < len(names):  # two roots with a drive of the same name: key by the whole path
        names = {id(d): str(getattr(d, "path", names[id(d)])) for d, _, _ in jobs}
    scale_failures = 0
    for drive, i, cam in progress(jobs, desc="eval mono"):
        gt = eval_depth(drive, cam, i)
        if gt is None:
            continue
        image = drive.image(cam, i)
        camera = drive.calib.cam(cam)
        if camera.shape != image.shape[:2]:
            camera = camera.scaled(image.shape[1], image.shape[0])
        pred, pred_small, infer_ms = pipe.predict(image, camera)
        ms.append(infer_ms)
        if gt.shape != pred.shape:
            import cv2

            inv = cv2.resize(1.0 / np.maximum(pred, 1e-6), (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_LINEAR)
            pred = 1.0 / np.maximum(inv, 1e-9)
        if mode == "camera_height":
            scale, _ = pipe.estimate_scale(pred_small, camera)
            if scale is None:
                scale_failures += 1
                scale = 1.0
            pred = pred * scale
        scored = evaluate_depth(gt, pred, median_scaling=mode == "median", crop=crop,
                                min_depth=min_depth, max_depth=max_depth)
        if scored is None:
            continue
        metrics, ratio = scored
        rows.append(metrics)
        by_drive.setdefault(names[id(drive)], []).append(metrics)
        ratios.append(ratio)
    if not rows:
        raise ValueError("no evaluated frame had ground truth inside the depth cap and crop")
    report: dict[str, Any] = mean_metrics(rows)
    r = np.asarray(ratios)
    report.update(
        frames=len(rows), scaling=mode, metric=pipe.metric, crop=crop, min_depth=min_depth, max_depth=max_depth,
        ratio_median=float(np.median(r)), ratio_std=float(np.std(r / np.median(r))) if mode == "median" else 0.0,
        p50_ms=float(np.percentile(ms, 50)), engine=str(engine), data=[str(d) for d in data],
        split=split, scale_failures=scale_failures,
        per_drive={name: {**mean_metrics(scored), "frames": len(scored)} for name, scored in by_drive.items()},
    )
    return report


def format_table(report: dict[str, Any]) -> str:
    head = "".join(f"{k:>10}" for k in DEPTH_KEYS)
    row = "".join(f"{report[k]:>10.4f}" for k in DEPTH_KEYS)
    note = f"{report['frames']} frames, scaling {report['scaling']}"
    if report["scaling"] == "median":
        note += f" (median ratio {report['ratio_median']:.3f}, std {report['ratio_std']:.3f})"
    lines = [head, row, f"{note}, engine {report['engine']}"]
    drives = report.get("per_drive") or {}
    if len(drives) > 1:  # the spread over drives (seeds): one bad drive hides in a mean
        by_rel = sorted(drives.items(), key=lambda kv: kv[1]["abs_rel"])
        (best, b), (worst, w) = by_rel[0], by_rel[-1]
        median = float(np.median([d["abs_rel"] for d in drives.values()]))
        lines.append(f"per drive ({len(drives)}): AbsRel {b['abs_rel']:.4f} ({best}) to {w['abs_rel']:.4f} ({worst}), "
                     f"median {median:.4f}; a1 {min(d['a1'] for d in drives.values()):.4f} to "
                     f"{max(d['a1'] for d in drives.values()):.4f}")
    return "\n".join(lines)
