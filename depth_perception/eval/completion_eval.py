"""`depth-perception eval completion`: an NLSPN engine and the classical IP-Basic in-fill on the same frames.

Protocol (KITTI depth completion): input = the frame's projected LiDAR (`proj_depth/velodyne_raw`, else the
raw scan projected), target = `proj_depth/groundtruth`; frames without ground truth are skipped. `--crop H W`
takes the bottom-centre crop first (352 1216 is KITTI's validation crop). Every method gets the same image
and sparse depth at the frame's resolution through `CompletionPipeline.process_sparse` (which resizes for a
fixed-size engine and restores). Figures per frame over pixels with ground truth, averaged over frames:
RMSE and MAE in mm, iRMSE and iMAE in 1/km (`eval.completion_metrics`), and the median time per frame.
Ground truth beyond `--max-depth` is left out (every method's output ends there).
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .completion_metrics import average_metrics, completion_metrics


def _crop(arrays: list[np.ndarray], crop: Sequence[int] | None) -> list[np.ndarray]:
    if not crop:
        return arrays
    ch, cw = int(crop[0]), int(crop[1])
    h, w = arrays[0].shape[:2]
    if ch > h or cw > w:
        raise ValueError(f"--crop {ch} {cw} is larger than the {w}x{h} frames")
    y0, x0 = h - ch, (w - cw) // 2
    return [a[y0:y0 + ch, x0:x0 + cw] for a in arrays]


def evaluate(
    engine: str,
    data: Sequence[Any],
    *,
    cameras: Sequence[int] = (2,),
    crop: Sequence[int] | None = None,
    max_frames: int = 0,
    stride: int = 1,
    min_depth: float = 0.5,
    max_depth: float = 90.0,
    backend: str = "auto",
    device: str = "auto",
    depth_root: str | Path | None = None,
) -> dict[str, Any]:
    """Score `engine` and IP-Basic on every selected frame of `data` (folders, or drive readers already open)."""
    from ..pipelines.completion import CompletionPipeline, CompletionPipelineConfig
    from ..training.completion_data import frame_sparse_depth, has_groundtruth, open_completion_drives
    from ..utils import progress

    if stride < 1:
        raise ValueError(f"--stride must be >= 1, got {stride}")
    common = dict(backend=backend, device=device, min_depth=min_depth, max_depth=max_depth)
    methods = {"classical": CompletionPipeline(CompletionPipelineConfig(engine="classical", **common))}
    if engine != "classical":
        learned = CompletionPipeline(CompletionPipelineConfig(engine=engine, **common))
        if learned.engine is not None:  # "auto" without a shipped engine falls back to classical
            methods[f"nlspn:{Path(learned.name).name}"] = learned
    drives = open_completion_drives(list(data), depth_root)
    jobs = []
    for drive in drives:
        for cam in cameras:
            frames = [i for i in range(0, drive.num_frames, stride) if has_groundtruth(drive, cam, i)]
            jobs.extend((drive, cam, i) for i in (frames[:max_frames] if max_frames > 0 else frames))
    if not jobs:
        raise ValueError(f"no frames with ground truth (proj_depth/groundtruth) in {[str(d) for d in data]}")
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in methods}
    times: dict[str, list[float]] = {name: [] for name in methods}
    size = (0, 0)
    for drive, cam, i in progress(jobs, desc="eval completion"):
        image = np.asarray(drive.image(cam, i))
        sparse = frame_sparse_depth(drive, cam, i)
        gt = np.nan_to_num(np.asarray(drive.groundtruth_depth(cam, i), np.float32), nan=0.0)
        gt[gt > max_depth] = 0.0  # no method outputs beyond max_depth (synthetic ground truth reaches the sky)
        image, sparse, gt = _crop([image, sparse, gt], crop)
        camera = drive.calib.cam(cam)
        if crop:
            camera = camera.cropped((camera.width - gt.shape[1]) // 2, camera.height - gt.shape[0],
                                    gt.shape[1], gt.shape[0])
        size = (gt.shape[1], gt.shape[0])
        for name, pipe in methods.items():
            t0 = time.perf_counter()
            result = pipe.process_sparse(image, camera, sparse)
            times[name].append((time.perf_counter() - t0) * 1e3)
            rows[name].append(completion_metrics(result.depth, gt))
    report: dict[str, Any] = {"methods": {}, "frames": len(jobs), "width": size[0], "height": size[1],
                              "data": [str(d) for d in data], "crop": list(crop) if crop else None}
    for name in methods:
        row = average_metrics(rows[name])
        row["p50_ms"] = float(np.percentile(times[name], 50))
        report["methods"][name] = row
    learned_names = [n for n in methods if n != "classical"]
    if learned_names:
        base = report["methods"]["classical"]["rmse_mm"]
        report["rmse_vs_classical"] = report["methods"][learned_names[0]]["rmse_mm"] / base if base > 0 else None
    return report


def format_table(report: dict[str, Any]) -> str:
    cols = [("rmse_mm", "RMSE mm"), ("mae_mm", "MAE mm"), ("irmse", "iRMSE 1/km"), ("imae", "iMAE 1/km"),
            ("p50_ms", "ms/frame")]
    lines = [f"{'method':<36}" + "".join(f"{title:>12}" for _, title in cols)]
    for name, row in report["methods"].items():
        lines.append(f"{name:<36}" + "".join(f"{row[k]:>12.1f}" for k, _ in cols))
    tail = f"{report['frames']} frames at {report['width']}x{report['height']}"
    if report.get("rmse_vs_classical") is not None:
        tail += f"; learned RMSE = {report['rmse_vs_classical']:.2f} x classical"
    lines.append(tail)
    return "\n".join(lines)
