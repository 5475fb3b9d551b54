"""The demo's report: each engine's depth against ground truth, pictures, bird's-eye view, PLY, metrics.json, table.

Numeric only (no ROS): `depth-perception demo` records what the nodes published and hands it here as
`EngineRun`s keyed by frame index; classical baselines are computed offline on the same frames
(`offline_baselines`). Protocol: ground truth is the drive's left colour camera depth (dense on synthetic
drives), kept where it lies in [min_depth, max_depth]; predictions are clipped to that range (monodepth2's
evaluation) and scored where they are valid, so `density` (the share of ground-truth pixels an engine filled)
is reported beside the errors. Relative (non-metric) mono depth is median-scaled per frame, as monodepth2 does.
Figures are averaged per frame (Eigen): abs_rel, sq_rel, rmse, rmse_log, a1-a3; completion adds rmse_mm,
mae_mm, irmse, imae (1/km). Latency: stamp-to-receive (input published -> depth received) and engine time.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..geometry.camera import PinholeCamera
from ..geometry.projection import backproject
from ..kinds import KIND_NAMES as KINDS
from ..utils import atomic_path, progress, write_json
from .completion_metrics import completion_metrics
from .metrics import compute_depth_metrics
from .report import birds_eye_plot, depth_panel, write_ply

LEFT, RIGHT = 2, 3
METRIC_KEYS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
COMPLETION_KEYS = ("rmse_mm", "mae_mm", "irmse", "imae")
# KITTI's colour cameras ride 1.65 m above the road; the bird's-eye view leaves out the road (and kerbs) below 1.3 m.
BEV_GROUND_BELOW_CAMERA_M = 1.3


@dataclass
class DemoFrame:
    """One frame of the drive as the report needs it: left image, ground truth (0 = none), LiDAR in the camera."""

    index: int
    stamp_ns: int
    image: np.ndarray
    right: np.ndarray | None
    gt: np.ndarray | None
    lidar_cam: np.ndarray
    camera: PinholeCamera
    baseline: float


@dataclass
class EngineRun:
    """What one engine produced on the demo frames, keyed by frame index, and how long it took."""

    kind: str
    engine: str  # the engine file's name, or "classical"
    source: str  # "node" (recorded from the running node) or "offline" (computed here)
    depth: dict[int, np.ndarray] = field(default_factory=dict)
    points: dict[int, np.ndarray] = field(default_factory=dict)  # published clouds in the camera frame, (N, 3)
    latency_ms: dict[int, float] = field(default_factory=dict)  # input published -> depth received
    engine_ms: dict[int, float] = field(default_factory=dict)
    median_scaled: bool = False  # relative depth: scale each frame by median(gt) / median(prediction)
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.source not in ("node", "offline"):
            raise ValueError(f"source must be 'node' or 'offline', got {self.source!r}")

    @property
    def name(self) -> str:
        """The row label, also used for file names: 'stereo', 'stereo_classical_offline'."""
        if self.source == "node":
            return self.kind
        return f"{self.kind}_{_slug(self.engine)}_offline"


def depth_at(run: EngineRun, frame: DemoFrame) -> np.ndarray | None:
    """The run's depth for a frame in the frame's pixels (a node may run at a smaller input_width/height)."""
    d = run.depth.get(frame.index)
    if d is None or d.shape == frame.camera.shape:
        return d
    import cv2

    # Nearest keeps NaN holes and depth edges: no depth is invented between surfaces.
    return cv2.resize(d, (frame.camera.width, frame.camera.height), interpolation=cv2.INTER_NEAREST)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", Path(text).stem).strip("_").lower() or "engine"


def load_frames(drive_dir: str | Path, indices: Iterable[int] | None = None) -> list[DemoFrame]:
    """Read the left/right images, ground truth and camera-frame LiDAR of a KITTI-layout drive."""
    from ..data.kitti import KittiRawDrive

    drive = KittiRawDrive(drive_dir)
    calib = drive.calib
    camera = calib.cam(LEFT)
    baseline = calib.baseline(LEFT, RIGHT) if RIGHT in calib.cameras else 0.0
    T_cam_velo = calib.T_cam_velo(LEFT)
    stamps = drive.timestamps(LEFT)
    frames = []
    for i in range(drive.num_frames) if indices is None else indices:
        gt = drive.groundtruth_depth(LEFT, i)
        if gt is None:
            gt = drive.sparse_depth(LEFT, i)
        lidar = np.zeros((0, 3), np.float32)
        if drive.has_velodyne:
            velo = drive.velodyne(i)[:, :3].astype(np.float64)
            lidar = (velo @ T_cam_velo[:3, :3].T + T_cam_velo[:3, 3]).astype(np.float32)
        right = drive.image(RIGHT, i) if RIGHT in drive.cameras else None
        frames.append(DemoFrame(i, int(stamps[i]), drive.image(LEFT, i), right, gt, lidar, camera, baseline))
    return frames


# ------------------------------------------------------------------------------------------------ metrics


def frame_metrics(
    pred: np.ndarray, gt: np.ndarray, min_depth: float, max_depth: float, median_scale: bool = False,
    completion: bool = False,
) -> dict[str, float] | None:
    """One frame's errors where ground truth is in range and the prediction is valid; None if nothing to score."""
    pred = np.asarray(pred, np.float32)
    gt = np.asarray(gt, np.float32)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    in_range = np.isfinite(gt) & (gt >= min_depth) & (gt <= max_depth)
    valid = in_range & np.isfinite(pred) & (pred > 0)
    if not valid.any():
        return None
    p, g = pred[valid].astype(np.float64), gt[valid].astype(np.float64)
    scale = 1.0
    if median_scale:
        scale = float(np.median(g) / np.median(p))
        p = p * scale
    p = np.clip(p, min_depth, max_depth)
    out = compute_depth_metrics(g, p)
    if completion:
        out.update({k: v for k, v in completion_metrics(p, g).items() if k in COMPLETION_KEYS})
    out["density"] = float(valid.sum() / max(1, in_range.sum()))
    if median_scale:
        out["scale"] = scale
    return out


def _percentile(values: Sequence[float], q: float) -> float | None:
    vals = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.percentile(vals, q)) if vals else None


def score_run(run: EngineRun, frames: Sequence[DemoFrame], min_depth: float, max_depth: float) -> dict[str, Any]:
    """Per-frame metrics averaged over the frames that have both depth and ground truth, plus timing."""
    per_frame: dict[int, dict[str, float]] = {}
    missing = []
    for f in frames:
        d = depth_at(run, f)
        if d is None:
            missing.append(f.index)
            continue
        if f.gt is None:
            continue
        m = frame_metrics(d, f.gt, min_depth, max_depth, run.median_scaled, run.kind == "completion")
        if m is not None:
            if run.kind == "mono" and not run.median_scaled:  # how much of the error is the scale alone
                m["abs_rel_median_scaled"] = frame_metrics(d, f.gt, min_depth, max_depth, True)["abs_rel"]
            per_frame[f.index] = m
    out: dict[str, Any] = {
        "kind": run.kind, "engine": run.engine, "source": run.source, "frames": len(frames),
        "frames_with_depth": len(frames) - len(missing), "frames_missing": missing, "scored_frames": len(per_frame),
        "median_scaled": run.median_scaled, "note": run.note,
    }
    if per_frame:
        keys = list(METRIC_KEYS) + (list(COMPLETION_KEYS) if run.kind == "completion" else []) + ["density"]
        keys += ["abs_rel_median_scaled"] if run.kind == "mono" and not run.median_scaled else []
        out.update({k: float(np.mean([m[k] for m in per_frame.values()])) for k in keys})
    latency = [run.latency_ms[i] for i in sorted(run.latency_ms)]
    engine = [run.engine_ms[i] for i in sorted(run.engine_ms)]
    out["latency_p50_ms"] = _percentile(latency, 50)
    out["latency_p95_ms"] = _percentile(latency, 95)
    out["engine_p50_ms"] = _percentile(engine, 50)
    out["engine_p95_ms"] = _percentile(engine, 95)
    out["per_frame"] = {str(i): m for i, m in per_frame.items()}
    return out


# ------------------------------------------------------------------------------------------- baselines


def offline_baselines(
    frames: Sequence[DemoFrame], kinds: Iterable[str] = ("stereo", "completion"), min_depth: float = 1.0,
    max_depth: float = 80.0, log: Any = None,
) -> list[EngineRun]:
    """The classical engines on the same frames, run here in-process: the plane sweep and IP-Basic."""
    import time

    runs = []
    kinds = list(kinds)
    if "stereo" in kinds and frames and frames[0].right is not None:
        from ..pipelines.stereo import StereoPipeline, StereoPipelineConfig

        pipe = StereoPipeline(StereoPipelineConfig(engine="classical", min_depth=min_depth, max_depth=max_depth))
        run = EngineRun("stereo", "classical", "offline", note="plane sweep, census/ZNCC + SGM")
        for f in progress(frames, desc="stereo classical (offline)"):
            t0 = time.perf_counter()
            res = pipe.process(f.image, f.right, f.camera, f.baseline)
            run.engine_ms[f.index] = (time.perf_counter() - t0) * 1e3
            run.depth[f.index] = res.depth
        runs.append(run)
    elif "stereo" in kinds and log:
        log("no right camera: no offline stereo baseline")
    if "completion" in kinds:
        try:
            from ..pipelines.completion import CompletionPipeline, CompletionPipelineConfig
        except ImportError as exc:
            if log:
                log(f"no offline completion baseline: {exc}")
        else:
            pipe = CompletionPipeline(CompletionPipelineConfig(engine="classical", min_depth=min_depth,
                                                               max_depth=max_depth))
            run = EngineRun("completion", "classical", "offline", note="IP-Basic in-fill")
            for f in progress(frames, desc="completion classical (offline)"):
                t0 = time.perf_counter()
                res = pipe.process(f.image, f.camera, f.lidar_cam)
                run.engine_ms[f.index] = (time.perf_counter() - t0) * 1e3
                run.depth[f.index] = res.depth
            runs.append(run)
    return runs


# ----------------------------------------------------------------------------------------------- output


def run_cloud(run: EngineRun, frame: DemoFrame) -> tuple[np.ndarray, np.ndarray | None]:
    """A run's cloud for one frame in the camera frame, with per-point colours where they map to pixels.

    The published cloud when there is one, else the depth back-projected with the camera.
    """
    h, w = frame.camera.shape
    pts = run.points.get(frame.index)
    if pts is None:
        depth = depth_at(run, frame)
        if depth is None:
            return np.zeros((0, 3), np.float32), None
        pts = backproject(depth, frame.camera)
    pts = np.asarray(pts, np.float32).reshape(-1, 3)
    colors = frame.image.reshape(-1, 3) if len(pts) == h * w and frame.image.ndim == 3 else None
    return pts, colors


def in_view(points: np.ndarray, camera: PinholeCamera) -> np.ndarray:
    """Points (N, 3) in the camera frame that project inside the image, in front of the camera."""
    from ..geometry.projection import project_points

    u, v, z = project_points(points, camera)
    keep = (z > 0.1) & (u >= 0) & (u < camera.width) & (v >= 0) & (v < camera.height)
    return points[keep]


def above_ground(points: np.ndarray, below_camera_m: float = BEV_GROUND_BELOW_CAMERA_M) -> np.ndarray:
    """Points higher than `below_camera_m` under the camera (y points down): the road would hide everything
    else in a bird's-eye view."""
    pts = np.asarray(points, np.float32).reshape(-1, 3)
    return pts[np.isfinite(pts).all(1) & (pts[:, 1] < below_camera_m)]


def format_value(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


# (metrics key, decimals) after the run, engine and frames columns
TABLE_COLUMNS = (("abs_rel", 3), ("rmse", 2), ("a1", 3), ("rmse_mm", 0), ("mae_mm", 0), ("density", 2),
                 ("latency_p50_ms", 0), ("engine_p50_ms", 0))


def format_table(metrics: dict[str, Any]) -> str:
    """The printed table: one row per engine run (nodes first, then the offline baselines), notes beneath."""
    header = ["run", "engine", "frames", "abs_rel", "rmse m", "a1", "rmse mm", "mae mm", "density", "latency ms",
              "engine ms"]
    rows = []
    notes = []
    for name, m in metrics["engines"].items():
        frames = f"{m.get('frames_with_depth', 0)}/{m.get('frames', 0)}"
        row = [name, Path(str(m.get("engine", "-"))).name, frames]
        row.extend(format_value(m.get(key), digits) for key, digits in TABLE_COLUMNS)
        rows.append(row)
        if m.get("note"):
            notes.append(f"{name}: {m['note']}")
    notes.extend(metrics.get("notes", []))
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows)
    if notes:
        lines.append("")
        lines.extend(f"note: {n}" for n in notes)
    return "\n".join(lines)


def write_demo_report(
    out_dir: str | Path,
    frames: Sequence[DemoFrame],
    runs: Sequence[EngineRun],
    *,
    min_depth: float = 1.0,
    max_depth: float = 80.0,
    settings: dict[str, Any] | None = None,
    notes: Sequence[str] = (),
    bev_frame: int | None = None,
) -> dict[str, Any]:
    """Write frames/frame_NNNN.png, bev.png, ply/*.ply, metrics.json and table.txt; returns the metrics."""
    out = Path(out_dir)
    if not frames:
        raise ValueError("no frames to report on")
    metrics: dict[str, Any] = {"settings": dict(settings or {}), "notes": list(notes), "engines": {},
                               "min_depth": min_depth, "max_depth": max_depth}
    for run in runs:
        metrics["engines"][run.name] = score_run(run, frames, min_depth, max_depth)

    for f in progress(frames, desc="report pictures"):
        depths = {run.name: depth_at(run, f) for run in runs if f.index in run.depth}
        depth_panel(out / "frames" / f"frame_{f.index:04d}.png", f.image, f.gt, depths,
                    title=f"frame {f.index}", min_depth=min_depth, max_depth=max_depth)

    chosen = next((f for f in frames if f.index == bev_frame), frames[len(frames) // 2])
    clouds = {}
    files: dict[str, Any] = {"frames": sorted(str(p.relative_to(out)) for p in (out / "frames").glob("frame_*.png"))}
    ply = {}
    for run in runs:
        pts, colors = run_cloud(run, chosen)
        if len(pts):
            clouds[run.name] = above_ground(pts)
            path = out / "ply" / f"{run.name}_{chosen.index:04d}.ply"
            write_ply(path, pts, colors)
            ply[run.name] = str(path.relative_to(out))
    lidar_path = out / "ply" / f"lidar_{chosen.index:04d}.ply"
    write_ply(lidar_path, chosen.lidar_cam)
    ply["lidar"] = str(lidar_path.relative_to(out))
    lidar = above_ground(in_view(chosen.lidar_cam, chosen.camera))
    reach = max_depth
    if len(lidar):
        reach = min(max_depth, max(10.0, float(np.percentile(lidar[:, 2], 98)) * 1.1))
    birds_eye_plot(out / "bev.png", clouds or {"none": np.zeros((0, 3), np.float32)}, reference=lidar,
                   reference_name="LiDAR (in view)", extent=(-reach / 2, reach / 2, 0.0, reach))
    files.update(bev="bev.png", ply=ply, bev_frame=chosen.index, metrics="metrics.json", table="table.txt",
                 bev_note=f"points above the road (y < {BEV_GROUND_BELOW_CAMERA_M} m in the camera frame); LiDAR "
                          "points inside the camera's view")
    metrics["files"] = files
    write_json(out / "metrics.json", metrics)
    with atomic_path(out / "table.txt") as tmp:
        tmp.write_text(format_table(metrics) + "\n")
    return metrics


__all__ = [
    "DemoFrame", "EngineRun", "format_table", "frame_metrics", "load_frames",
    "offline_baselines", "run_cloud", "score_run", "write_demo_report",
]
