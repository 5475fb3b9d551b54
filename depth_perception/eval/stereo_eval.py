"""`depth-perception eval stereo`: learned and classical plane sweeps against OpenCV StereoSGBM on the same frames.

Protocol: every evaluated frame's left (02) / right (03) pair is resized to --width x --height (intrinsics
with it); ground truth is the drive's depth (dense on synthetic drives, projected LiDAR on KITTI), resized
without interpolation, capped to [min_depth, max_depth]. Every method runs at that size. Holes in a
prediction are filled as the KITTI stereo devkit does (each hole takes the farther of its nearest valid
neighbours along the row), so sparse and dense methods are scored on the same pixels; `density` reports the
share a method filled itself. Depth metrics: Eigen's (abs_rel, sq_rel, rmse, rmse_log, a1-a3); disparity
metrics at the evaluation width: end-point error `epe`, shares off by more than 1 px / 3 px (`bad1`, `bad3`);
`normal_deg`: mean angle to ground-truth normals where the method and the drive have them.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..geometry.camera import PinholeCamera
from ..geometry.infill import fill_rows_background
from ..pipelines.stereo_classical import DEFAULT_PLANES
from .metrics import compute_depth_metrics

LEFT, RIGHT = 2, 3


# --------------------------------------------------------------------------------------------------- metrics


def depth_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Eigen et al.'s depth metrics over matching 1-D arrays of valid pixels (the mono evaluation's code)."""
    return compute_depth_metrics(gt, pred)


def disparity_metrics(pred_disp: np.ndarray, gt_disp: np.ndarray) -> dict[str, float]:
    err = np.abs(pred_disp - gt_disp)
    return {"epe": float(err.mean()), "bad1": float(np.mean(err > 1.0)), "bad3": float(np.mean(err > 3.0))}


def normal_angle_deg(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean angle in degrees between (N, 3) normals."""
    p = pred / np.maximum(np.linalg.norm(pred, axis=1, keepdims=True), 1e-9)
    g = gt / np.maximum(np.linalg.norm(gt, axis=1, keepdims=True), 1e-9)
    return float(np.degrees(np.arccos(np.clip((p * g).sum(1), -1.0, 1.0))).mean())


# --------------------------------------------------------------------------------------------------- methods


@dataclass
class SgbmConfig:
    """stereo_image_proc's disparity node defaults (P1 200, P2 400, window 15, uniqueness 15, speckle 100 / 4,
    prefilter cap 31, disp12 max diff 0), with the disparity range widened to cover min_depth."""

    block_size: int = 15
    p1: int = 200
    p2: int = 400
    uniqueness_ratio: int = 15
    speckle_window: int = 100
    speckle_range: int = 4
    prefilter_cap: int = 31
    disp12_max_diff: int = 0


def sgbm_disparity(left: np.ndarray, right: np.ndarray, num_disparities: int,
                   config: SgbmConfig | None = None) -> np.ndarray:
    """OpenCV StereoSGBM on a rectified pair -> disparity (H, W) float32 in pixels, <= 0 where it has none."""
    cfg = config or SgbmConfig()
    sgbm = cv2.StereoSGBM_create(
        minDisparity=0, numDisparities=max(16, int(np.ceil(num_disparities / 16.0)) * 16), blockSize=cfg.block_size,
        P1=cfg.p1, P2=cfg.p2, disp12MaxDiff=cfg.disp12_max_diff, preFilterCap=cfg.prefilter_cap,
        uniquenessRatio=cfg.uniqueness_ratio, speckleWindowSize=cfg.speckle_window, speckleRange=cfg.speckle_range,
        mode=cv2.STEREO_SGBM_MODE_SGBM,
    )
    gl = cv2.cvtColor(left, cv2.COLOR_RGB2GRAY) if left.ndim == 3 else left
    gr = cv2.cvtColor(right, cv2.COLOR_RGB2GRAY) if right.ndim == 3 else right
    return sgbm.compute(gl, gr).astype(np.float32) / 16.0


def sgbm_depth(left: np.ndarray, right: np.ndarray, camera: PinholeCamera, baseline: float, min_depth: float,
               config: SgbmConfig | None = None) -> np.ndarray:
    """OpenCV StereoSGBM on a rectified pair -> depth (H, W) float32, NaN where SGBM has no disparity."""
    max_disp = camera.fx * baseline / min_depth
    num = int(min(np.ceil(max_disp / 16.0), max(1, camera.width // 16 - 1)) * 16)
    disp = sgbm_disparity(left, right, num, config)
    with np.errstate(divide="ignore"):
        depth = np.float32(camera.fx * baseline) / disp
    depth[~(disp > 0)] = np.nan
    return depth


class _Method:
    def __init__(self, name: str, run: Any) -> None:
        self.name = name
        self.run = run
        self.ms: list[float] = []
        self.pred_disp: list[np.ndarray] = []
        self.gt_disp: list[np.ndarray] = []
        self.pred_depth: list[np.ndarray] = []
        self.gt_depth: list[np.ndarray] = []
        self.density: list[float] = []
        self.normal_deg: list[float] = []


def _methods(engines: list[str], args: StereoEvalOptions) -> list[_Method]:
    from ..pipelines.stereo import StereoPipeline, StereoPipelineConfig

    methods = [_Method("sgbm", lambda left, right, cam, b: (sgbm_depth(left, right, cam, b, args.min_depth), None))]
    for engine in engines:
        cfg = StereoPipelineConfig(
            engine=engine, backend=args.backend, device=args.device, min_depth=args.min_depth,
            max_depth=args.max_depth, planes=args.planes,
            sweep_width=max(args.width, 32) if engine == "classical" else 0,  # an engine sweeps at its tiles' size
            edge_snap=args.edge_snap,
        )
        pipe = StereoPipeline(cfg)

        def run(left, right, cam, b, pipe=pipe):
            r = pipe.process(left, right, cam, b)
            return r.depth, r.normals

        name = "classical" if engine == "classical" else f"learned:{Path(engine).name}"
        methods.append(_Method(name, run))
    return methods


# -------------------------------------------------------------------------------------------- the evaluation


@dataclass
class StereoEvalOptions:
    """What `eval stereo --data` scores (its command line, one field per option; help in commands/)."""

    data: list[str] = field(default_factory=list)
    engine: list[str] = field(default_factory=lambda: ["classical"])  # besides SGBM: 'classical' and/or artifacts
    height: int = 192
    width: int = 640
    min_depth: float = 1.0
    max_depth: float = 80.0
    planes: int = DEFAULT_PLANES  # of the classical sweep
    edge_snap: bool = True  # the pipeline's edge_snap
    max_frames: int = 0  # per drive; 0 = all
    stride: int = 1
    backend: str = "auto"
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.width < 32 or self.height < 16:
            raise ValueError(f"--width/--height too small: {self.width}x{self.height}")
        if self.stride < 1:
            raise ValueError(f"--stride must be >= 1, got {self.stride}")


def evaluate(args: StereoEvalOptions, drives: list[Any] | None = None,
             extra: Sequence[tuple[str, Callable[..., Any]]] = ()) -> dict[str, Any]:
    """Run every method on every selected frame of `args.data` (or of `drives`, readers already open); `extra`:
    more methods as (name, run(left, right, camera, baseline) -> (depth, normals or None))."""
    from ..training.stereo_data import drive_baseline, drive_depth, open_drives
    from ..utils import progress

    drives = open_drives(args.data) if drives is None else drives
    methods = _methods(list(args.engine), args) + [_Method(name, run) for name, run in extra]
    jobs = []
    for drive in drives:
        frames = list(range(0, drive.num_frames, args.stride))
        if args.max_frames > 0:
            frames = frames[: args.max_frames]
        jobs.extend((drive, i) for i in frames)
    if not jobs:
        raise ValueError("no frames to evaluate")
    W, H = args.width, args.height
    for drive, i in progress(jobs, desc="eval stereo"):
        cam = drive.calib.cam(LEFT).scaled(W, H)
        baseline = drive_baseline(drive)
        left = cv2.resize(drive.image(LEFT, i), (W, H), interpolation=cv2.INTER_AREA)
        right = cv2.resize(drive.image(RIGHT, i), (W, H), interpolation=cv2.INTER_AREA)
        gt = drive_depth(drive, i, W, H)
        valid = (gt >= args.min_depth) & (gt <= args.max_depth)
        if not valid.any():
            continue
        normals_gt = drive.normals(LEFT, i)
        if normals_gt is not None:
            normals_gt = cv2.resize(np.nan_to_num(np.asarray(normals_gt, np.float32)), (W, H),
                                    interpolation=cv2.INTER_NEAREST)
        fxb = cam.fx * baseline
        for m in methods:
            t0 = time.perf_counter()
            depth, normals = m.run(left, right, cam, baseline)
            m.ms.append((time.perf_counter() - t0) * 1e3)
            with np.errstate(divide="ignore", invalid="ignore"):
                disp = np.where(np.isfinite(depth) & (depth > 0), fxb / depth, np.nan)
            m.density.append(float(np.mean(np.isfinite(disp)[valid])))
            disp = fill_rows_background(disp)
            disp = np.maximum(disp, fxb / args.max_depth)
            pred_depth = np.clip(fxb / disp, args.min_depth, args.max_depth)
            m.pred_disp.append(disp[valid])
            m.gt_disp.append((fxb / gt[valid]).astype(np.float32))
            m.pred_depth.append(pred_depth[valid])
            m.gt_depth.append(gt[valid])
            if normals is not None and normals_gt is not None:
                nv = valid & (np.linalg.norm(normals_gt, axis=2) > 0.5)
                if nv.any():
                    m.normal_deg.append(normal_angle_deg(normals[nv], normals_gt[nv]))
    results: dict[str, Any] = {}
    for m in methods:
        if not m.ms:
            continue
        row = depth_metrics(np.concatenate(m.pred_depth), np.concatenate(m.gt_depth))
        row.update(disparity_metrics(np.concatenate(m.pred_disp), np.concatenate(m.gt_disp)))
        row["density"] = float(np.mean(m.density))
        row["normal_deg"] = float(np.mean(m.normal_deg)) if m.normal_deg else float("nan")
        row["p50_ms"] = float(np.percentile(m.ms, 50))
        results[m.name] = row
    return {
        "methods": results, "frames": len(methods[0].ms), "height": H, "width": W,
        "min_depth": args.min_depth, "max_depth": args.max_depth, "data": [str(d) for d in args.data],
    }


def format_table(report: dict[str, Any]) -> str:
    cols = ["abs_rel", "rmse", "a1", "epe", "bad1", "bad3", "density", "normal_deg", "p50_ms"]
    lines = [f"{'method':<28}" + "".join(f"{c:>11}" for c in cols)]
    for name, row in report["methods"].items():
        lines.append(f"{name:<28}" + "".join(f"{row[c]:>11.4f}" for c in cols))
    lines.append(f"{report['frames']} frames at {report['width']}x{report['height']}")
    return "\n".join(lines)
