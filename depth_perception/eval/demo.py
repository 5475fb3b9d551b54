"""The demo, in one place: synthetic drive -> rosbag2 -> the three depth nodes over DDS -> report in `out`.

`run_demo(DemoOptions(...))` (the work behind `depth-perception demo`): synthesize a held-out drive (seed
1000), convert it with kitti2bag, start the mono, stereo and completion nodes from config/kitti.yaml with the
shipped default engines (stereo and completion fall back to their classical engines where no default engine
ships; mono is then left out), feed them the bag frame by frame and record what they publish, run the
classical baselines offline on the same frames, and write pictures, a bird's-eye view, PLY clouds,
metrics.json and the table printed at the end. Each step is reused by a second run when its stamp file says
the same parameters.

The report: what the nodes published arrives as `EngineRun`s keyed by frame index; classical baselines are
computed offline on the same frames (`offline_baselines`). Protocol: ground truth is the drive's left colour
camera depth (dense on synthetic drives), kept where it lies in [min_depth, max_depth]; predictions are clipped
to that range (monodepth2's evaluation) and scored where they are valid, so `density` (the share of
ground-truth pixels an engine filled) is reported beside the errors. Relative (non-metric) mono depth is
median-scaled per frame, as monodepth2 does. Figures are averaged per frame (Eigen): abs_rel, sq_rel, rmse,
rmse_log, a1-a3; completion adds rmse_mm, mae_mm, irmse, imae (1/km). Latency: stamp-to-receive (input
published -> depth received) and engine time.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..geometry.camera import PinholeCamera
from ..geometry.projection import backproject
from ..kinds import KIND_NAMES as KINDS
from ..kinds import kind as kind_entry
from ..utils import atomic_path, progress, write_json
from .completion_metrics import completion_metrics
from .metrics import compute_depth_metrics
from .report import birds_eye_plot, depth_panel, write_ply

LEFT, RIGHT = 2, 3
METRIC_KEYS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
COMPLETION_KEYS = ("rmse_mm", "mae_mm", "irmse", "imae")
# KITTI's colour cameras ride 1.65 m above the road; the bird's-eye view leaves out the road (and kerbs) below 1.3 m.
BEV_GROUND_BELOW_CAMERA_M = 1.3
STAMP = ".demo_stamp.json"


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


# ------------------------------------------------------------------------------------------------ the demo


@dataclass
class DemoOptions:
    """What `depth-perception demo` runs (its command line, one field per option; help in commands/demo.py)."""

    out: str = "out/demo"
    frames: int = 20  # to synthesize, or to take from the start of `drive`
    seed: int = 1000  # synthetic drive seed (held-out: >= 1000)
    width: int | None = None  # synthesize frames this size (default: synth's); width and height go together
    height: int | None = None
    drive: str | None = None  # a KITTI raw drive instead of a synthetic one
    engines_dir: str | None = None  # <kind>_default.onnx + .json (default: the shipped engines)
    config: str | None = None  # node parameter file (default: config/kitti.yaml)
    rate: float | None = None  # replay with the bag's timing at this rate; None: frame by frame
    frame_timeout: float = 120.0
    kinds: tuple[str, ...] = KINDS  # the nodes that run
    baselines: bool = True  # the offline classical baselines
    force: bool = False  # synthesize and convert again even if reusable

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ValueError(f"--frames must be >= 1, got {self.frames}")
        if self.rate is not None and not self.rate > 0:
            raise ValueError(f"--rate must be > 0, got {self.rate}")
        if self.frame_timeout <= 0:
            raise ValueError(f"--frame-timeout must be > 0, got {self.frame_timeout}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and value < 16:
                raise ValueError(f"--{name} must be >= 16, got {value}")
        if (self.width is None) != (self.height is None):
            raise ValueError("--width and --height go together (the synthetic rig keeps its aspect only when told "
                             "both)")
        if self.drive is not None and not Path(self.drive).is_dir():
            raise ValueError(f"--drive {self.drive} is not a folder")
        if self.engines_dir is not None and not Path(self.engines_dir).is_dir():
            raise ValueError(f"--engines-dir {self.engines_dir} is not a folder")
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown kinds {sorted(unknown)}; known: {list(KINDS)}")
        if not self.kinds:
            raise ValueError("--no-mono, --no-stereo and --no-completion leave nothing to run")


def _say(msg: str) -> None:
    print(f"[demo] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ reusable steps


def _read_stamp(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / STAMP).read_text())
    except (OSError, ValueError):
        return None


def _write_stamp(folder: Path, stamp: dict[str, Any]) -> None:
    from ..utils import write_json

    write_json(folder / STAMP, stamp)


def _find_drive(root: Path) -> Path | None:
    drives = sorted(p for p in root.glob("*/*_drive_*_sync") if p.is_dir())
    return drives[0] if len(drives) == 1 else None


def _drive_is_valid(drive: Path, frames: int) -> bool:
    from ..data.kitti import KittiRawDrive

    try:
        d = KittiRawDrive(drive)
        d.validate()
        return d.num_frames == frames and {2, 3} <= set(d.cameras) and d.has_velodyne and d.has_oxts
    except (OSError, ValueError):
        return False


def synthesize(root: Path, seed: int, frames: int, width: int | None, height: int | None) -> Path:
    """Render the synthetic drive of `seed` under root (emptied first); returns the drive folder."""
    from ..data.synth import SynthConfig, write_drive
    from ..utils import progress

    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    size = {k: v for k, v in (("width", width), ("height", height)) if v is not None}
    summary = write_drive(root, seed, frames, SynthConfig(**size), workers=max(1, min(4, os.cpu_count() or 1)),
                          progress=lambda it, total: progress(it, desc="synth", total=total))
    return Path(summary.path)


def ensure_drive(args: DemoOptions, out: Path) -> Path:
    if args.drive is not None:
        return Path(args.drive)
    root = out / "data"
    stamp = {"seed": args.seed, "frames": args.frames, "width": args.width, "height": args.height}
    drive = _find_drive(root) if root.is_dir() else None
    if not args.force and drive is not None and _read_stamp(root) == stamp and _drive_is_valid(drive, args.frames):
        _say(f"reusing the synthetic drive {drive}")
        return drive
    _say(f"synthesizing {args.frames} frames (seed {args.seed}) into {root}")
    t0 = time.monotonic()
    drive = synthesize(root, args.seed, args.frames, args.width, args.height)
    if not _drive_is_valid(drive, args.frames):
        raise RuntimeError(f"synth wrote an incomplete drive: {drive}")
    _write_stamp(root, stamp)
    _say(f"synthesized {drive.name} in {time.monotonic() - t0:.0f} s")
    return drive


def ensure_bag(drive: Path, out: Path, force: bool, frames: int | None = None) -> Path:
    """The drive's first `frames` frames (None: all) as an mcap bag in out/bag/drive; reused while the drive
    and the frame count are unchanged."""
    from ..data.kitti2bag import convert

    folder = out / "bag"
    bag = folder / "drive"
    files = [p for p in drive.rglob("*") if p.is_file()]
    stamp = {"drive": str(drive.resolve()), "files": len(files), "frames": frames,
             "mtime": max((p.stat().st_mtime for p in files), default=0.0)}
    if not force and (bag / "metadata.yaml").is_file() and _read_stamp(folder) == stamp:
        _say(f"reusing the bag {bag}")
        return bag
    _say(f"converting {drive.name} to {bag}")
    summary = convert(drive, bag, storage="mcap", end=frames, overwrite=True)
    _write_stamp(folder, stamp)
    _say(f"wrote {sum(summary.counts.values())} messages")
    return bag


# ------------------------------------------------------------------------------------------------- engines


def _default_engine(kind: str, engines_dir: str | None) -> Path | None:
    name = f"{kind}_default.onnx"
    if engines_dir is not None:
        path = Path(engines_dir) / name
        return path if path.is_file() and path.with_suffix(".json").is_file() else None
    try:
        from ..engines import default_engine_path

        found = default_engine_path(kind)
        if found is not None and Path(found).is_file():
            return Path(found)
    except (ImportError, FileNotFoundError, ValueError):
        pass
    path = Path(__file__).resolve().parents[2] / "engines" / name
    return path if path.is_file() and path.with_suffix(".json").is_file() else None


def choose_engines(args: DemoOptions) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """{kind: {"engine": parameter value, "label": shown name, "metric": bool}} for the kinds that run; notes."""
    chosen: dict[str, dict[str, Any]] = {}
    notes = []
    for kind in KINDS:
        if kind not in args.kinds:
            continue
        path = _default_engine(kind, args.engines_dir)
        if path is not None:
            try:
                spec = json.loads(path.with_suffix(".json").read_text())
            except (OSError, ValueError):
                spec = {}
            metric = bool(spec.get("metric", False))
            chosen[kind] = {"engine": str(path.resolve()), "label": path.name, "metric": metric}
        elif kind_entry(kind).classical:
            chosen[kind] = {"engine": "classical", "label": "classical", "metric": True}
            notes.append(f"{kind}: no {kind}_default.onnx shipped; the node runs its classical engine")
        else:
            notes.append(f"{kind}: skipped, no {kind}_default.onnx shipped (mono has no classical engine)")
    return chosen, notes


def _config_path(args: DemoOptions) -> Path:
    if args.config is not None:
        path = Path(args.config)
    else:
        path = Path(__file__).resolve().parents[2] / "config" / "kitti.yaml"
        if not path.is_file():
            try:
                from ament_index_python.packages import get_package_share_directory

                path = Path(get_package_share_directory("depth_perception")) / "config" / "kitti.yaml"
            except Exception:  # no ament index outside a ROS install
                pass
    if not path.is_file():
        raise FileNotFoundError(f"node parameter file not found: {path}")
    return path


# ---------------------------------------------------------------------------------------------------- run


def node_config(config: Path, kinds: set[str], out: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the node-set YAML with the nodes of other kinds disabled (what the demo ran, kept in --out),
    and the name of the node of each kind."""
    import yaml

    from ..utils import atomic_path

    data = yaml.safe_load(config.read_text()) or {}
    nodes = data.get("nodes") or {}
    if not isinstance(nodes, dict):
        raise ValueError(f"{config}: 'nodes' must be a mapping of node names")
    names: dict[str, str] = {}
    for name, entry in nodes.items():
        if not isinstance(entry, dict):
            continue
        if entry.get("kind") in kinds and entry.get("kind") not in names and entry.get("enabled", True):
            names[entry["kind"]] = name
        else:
            entry["enabled"] = False
    missing = kinds - set(names)
    if missing:
        raise ValueError(f"{config} has no enabled node of kind {', '.join(sorted(missing))}")
    with atomic_path(out) as tmp:
        tmp.write_text(f"# written by depth-perception demo from {config}\n" + yaml.safe_dump(data, sort_keys=False))
    return out, names


def record_nodes(args: DemoOptions, bag: Path, engines: dict[str, dict[str, Any]], frames: int) -> Any:
    """Start the nodes with the chosen engines, feed them the bag frame by frame, return the Recording."""
    from ..nodes.runner import start_nodes
    from ..ros.recorder import record_bag

    config, names = node_config(_config_path(args), set(engines), Path(args.out) / "nodes.yaml")
    overrides = {names[k]: {"engine": e["engine"]} for k, e in engines.items()}
    for kind, name in names.items():
        engines[kind]["node"] = name
    # Gated replay sends one frame at a time, so reliable inputs cost nothing and never lose a large image.
    for params in overrides.values():
        params["qos_reliability"] = "reliable"

    def make_nodes(context: Any) -> list[Any]:
        nodes = start_nodes(config, overrides, context=context)
        for node in nodes:
            if hasattr(node, "wait_until_ready") and not node.wait_until_ready(300.0):
                state = node.diagnostic_state()[1] if hasattr(node, "diagnostic_state") else "not ready in 300 s"
                _say(f"{node.get_name()}: no engine: {state}")
        return nodes

    from ..utils import progress

    # The bar advances once per frame: tqdm counts an item as done when the next one is asked for.
    ticks = iter(progress(range(frames), desc="frames through the nodes"))
    next(ticks, None)

    def on_frame(k: int, n: int, ok: bool) -> None:  # the recorder logs frames that timed out
        next(ticks, None)

    def node_info(node: Any) -> dict[str, Any]:
        from ..nodes.runner import node_summary

        return {**node_summary(node), "frame_log": list(getattr(node, "frame_log", []))}

    _say(f"starting {', '.join(names.values())} from {config}; replay "
         + ("frame by frame" if args.rate is None else f"at rate {args.rate}"))
    try:
        return record_bag(bag, make_nodes, list(engines), rate=args.rate, frame_timeout_s=args.frame_timeout,
                          log=_say, on_frame=on_frame, node_info=node_info)
    finally:
        for _ in ticks:  # close the bar
            pass


def node_runs(recording: Any, engines: dict[str, dict[str, Any]]) -> list[Any]:
    """EngineRuns of what each node published, with its engine time per frame from the node's own log."""
    runs = []
    for kind, engine in engines.items():
        info = recording.node_info.get(engine.get("node", ""), {})
        engine_ms_by_stamp = {int(row[0]): float(row[1]) for row in info.get("frame_log", [])}
        # Scored as published: a relative mono engine is the node's to scale (its scale_recovery parameter).
        run = EngineRun(kind, engine["label"], "node")
        if not engine["metric"]:
            run.note = "relative engine, scaled by the node"
        for k, rec in recording.outputs.get(kind, {}).items():
            if rec.depth is None:
                continue
            run.depth[k] = rec.depth
            if rec.points is not None and rec.points_frame_id == rec.frame_id:
                run.points[k] = rec.points
            if rec.stamp_ns in engine_ms_by_stamp:
                run.engine_ms[k] = engine_ms_by_stamp[rec.stamp_ns]
        run.latency_ms.update(recording.latency_ms.get(kind, {}))
        faults = info.get("faults") or {}
        if faults:
            run.note = "; ".join(filter(None, [run.note, "faults: " + ", ".join(f"{c} x{n}"
                                                                                 for c, n in sorted(faults.items()))]))
        runs.append(run)
    return runs


def run_demo(args: DemoOptions) -> int:
    """The whole demo; 0 when some engine's depth reached the report, else 1."""
    t_start = time.monotonic()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    drive = ensure_drive(args, out)
    from ..data.kitti import KittiRawDrive

    n_frames = min(args.frames, KittiRawDrive(drive).num_frames)  # a longer --drive is cut to --frames
    bag = ensure_bag(drive, out, args.force, n_frames)
    engines, notes = choose_engines(args)
    for note in notes:
        _say(note)
    if not engines:
        raise RuntimeError("no engine to run: " + "; ".join(notes))

    t0 = time.monotonic()
    recording = record_nodes(args, bag, engines, n_frames)
    record_s = time.monotonic() - t0
    if recording.stats.timed_out:
        notes.append(f"frames without every node's output within {args.frame_timeout:.0f} s: "
                     f"{recording.stats.timed_out}")
    for kind in recording.stats.given_up:
        state = recording.node_info.get(engines[kind].get("node", ""), {}).get("state", ("", ""))
        notes.append(f"{kind}: the node published no depth ({' '.join(map(str, state)).strip() or 'no state'})")
    notes.extend(f"recorder: {e}" for e in recording.errors[:5])
    _say(f"nodes done in {record_s:.0f} s; scoring against ground truth")
    frames = load_frames(drive, range(n_frames))
    runs = node_runs(recording, engines)
    if args.baselines:
        runs += offline_baselines(frames, [k for k in ("stereo", "completion") if k in engines], log=_say)
    settings = {"frames": len(frames), "seed": args.seed if args.drive is None else None, "drive": str(drive),
                "bag": str(bag), "rate": args.rate, "engines": {k: e["engine"] for k, e in engines.items()},
                "width": frames[0].camera.width, "height": frames[0].camera.height,
                "record_s": record_s}
    metrics = write_demo_report(out, frames, runs, settings=settings, notes=notes)
    print((out / "table.txt").read_text(), end="")
    _say(f"wrote {out}/ (frames/, bev.png, ply/, metrics.json, table.txt) in {time.monotonic() - t_start:.0f} s")
    return 0 if any(m.get("frames_with_depth") for m in metrics["engines"].values()) else 1
