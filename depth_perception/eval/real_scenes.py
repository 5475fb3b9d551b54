"""Real stereo scenes with ground truth (data.middlebury): every method on the same inputs, side by side.

Stereo protocol: each method sees the full rectified pair with both cameras' intrinsics (SGBM the raw pair, as
stereo_image_proc would); scores are in the scene's own disparity (Middlebury's d = f B / Z - doffs) on every
pixel with ground truth. `bad1`, `bad3`: share off by more than 1 / 3 px, a hole counting as an error; `epe` over
the pixels a method filled (with `density`); depth metrics (`abs_rel`, `rmse`, `a1`) after the KITTI devkit's
background hole filling, so a hole costs there too.

Completion protocol: sparse depth is sampled from the ground truth in two patterns, uniform random at a density
and a simulated spinning scanner (beams at constant elevation steps, seen from a point above the camera); every
method gets the same sparse input; KITTI depth-completion metrics on the ground-truth pixels not given as input.

Monocular protocol: the engine sees the left image; monodepth2's metrics on every pixel with ground truth, after
median scaling (relative depth) and at the engine's own scale, beside a constant: the truth's median depth on every
pixel, what a method that sees nothing scores once median-scaled. A monocular engine has to beat it.
"""
from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data.middlebury import (
    ALOE_FILES,
    StereoScene,
    is_opencv_aloe_folder,
    motorcycle_scene,
    read_middlebury_scene,
    read_opencv_aloe,
)
from ..data.opencv_rig import is_opencv_rig_folder, read_opencv_rig
from ..data.sparse_patterns import random_pattern, scanner_pattern
from ..geometry.infill import fill_rows_background
from ..pipelines.stereo_classical import DEFAULT_PLANES
from .completion_metrics import completion_metrics
from .metrics import compute_depth_metrics, evaluate_depth

# where OpenCV's sample data (Aloe, the chessboard rig, its calibrations) is looked for: tools/fetch_real_scenes.sh's
# folder (under the working directory, then the source tree), then where Debian's and Ubuntu's opencv-doc installs it
OPENCV_SAMPLE_FOLDERS = ("data/real/opencv_samples",
                         str(Path(__file__).resolve().parents[2] / "data" / "real" / "opencv_samples"),
                         "/usr/share/doc/opencv-doc/examples/data")


def _has_aloe_files(folder: str) -> bool:
    """A folder with any of OpenCV's Aloe files is read as Aloe (also one that holds the rig's pairs beside them:
    'chessboard' names the rig)."""
    return Path(folder).is_dir() and any((Path(folder) / n).exists() for n in ALOE_FILES)


def _names_rig(name: str) -> bool:
    """'chessboard', or a folder with the rig's pairs and none of Aloe's files."""
    return name == "chessboard" or (is_opencv_rig_folder(name) and not _has_aloe_files(name))


def _not_here(scene: str) -> FileNotFoundError:
    return FileNotFoundError(f"scene '{scene}' is not here (looked in {', '.join(OPENCV_SAMPLE_FOLDERS)}): run "
                             "`bash tools/fetch_real_scenes.sh` or `apt install opencv-doc`")


def find_opencv_samples(holds: Any = is_opencv_aloe_folder) -> Path | None:
    """The first of OPENCV_SAMPLE_FOLDERS for which `holds(folder)` (default: it holds Aloe), or None."""
    return next((Path(f) for f in OPENCV_SAMPLE_FOLDERS if holds(f)), None)


def load_scene(name: str, metric: bool = False) -> StereoScene:
    """'motorcycle' (the scene scikit-image ships), 'aloe' (Middlebury 2006, from OpenCV's sample data), a
    Middlebury 2014 scene folder, or a folder holding OpenCV's aloeL.jpg / aloeR.jpg / aloeGT.png. `metric`: the
    caller needs depth in metres (completion, monocular), which an uncalibrated scene (Aloe) cannot give."""
    if _names_rig(name):
        raise ValueError("scene chessboard is a rig of 13 pairs with its truth on the board alone: it scores stereo "
                         "only (eval stereo --scene chessboard)")
    if name == "motorcycle":
        scene = motorcycle_scene()
    elif name == "aloe":
        folder = find_opencv_samples()
        if folder is None:
            raise _not_here("aloe")
        scene = read_opencv_aloe(folder)
    elif _has_aloe_files(name):  # the reader names what is missing
        scene = read_opencv_aloe(name)
    else:
        scene = read_middlebury_scene(name)
    if metric:
        _check_metric(scene)
    return scene


def load_scenes(name: str) -> list[StereoScene]:
    """`load_scene`'s scenes, and 'chessboard' (or a folder holding them): the 13 rectified pairs of the real rig
    in OpenCV's sample data (`data.opencv_rig`), its ground truth on the board alone."""
    if _names_rig(name):
        folder = find_opencv_samples(is_opencv_rig_folder) if name == "chessboard" else Path(name)
        if folder is None:
            raise _not_here("chessboard")
        return read_opencv_rig(folder)
    return [load_scene(name)]


def _check_metric(scene: StereoScene) -> None:
    if not scene.calibrated:
        raise ValueError(f"scene {scene.name} ships without its calibration (doffs unknown): its depth in metres is "
                         "not known, so it scores stereo only (eval stereo --scene)")


def _sgbm_disparity(scene: StereoScene) -> np.ndarray:
    """SGBM on the raw pair (Middlebury disparity), its range covering the scene's with a margin."""
    from .stereo_eval import sgbm_disparity

    valid = scene.disparity[np.isfinite(scene.disparity)]
    num = int(float(valid.max()) * 1.25 + 1) if valid.size else 64
    disp = sgbm_disparity(scene.left, scene.right, num)
    return np.where(disp > 0, disp, np.nan).astype(np.float32)


def _depth_range(scene: StereoScene) -> tuple[float, float]:
    depth = scene.depth[np.isfinite(scene.depth)]
    return float(depth.min()) * 0.7, float(depth.max()) * 1.4


def stereo_scores(scene: StereoScene, disparity: np.ndarray) -> dict[str, float]:
    """The stereo protocol's figures for a predicted disparity (NaN = hole) against the scene's."""
    gt = scene.disparity
    valid = np.isfinite(gt)
    err = np.abs(np.where(np.isfinite(disparity), disparity, np.inf) - gt)[valid]
    filled_err = err[np.isfinite(err)]
    fxb = scene.camera.fx * scene.baseline
    # devkit filling works on "disparity + doffs" (the quantity proportional to inverse depth)
    full = fill_rows_background(np.where(np.isfinite(disparity), disparity + scene.doffs, np.nan))
    with np.errstate(divide="ignore"):
        pred_depth = np.where(full > 0, fxb / full, np.nan)
    lo, hi = _depth_range(scene)
    pred_depth = np.clip(np.nan_to_num(pred_depth, nan=hi), lo, hi)
    depth = compute_depth_metrics(scene.depth[valid], pred_depth[valid])
    return {"bad1": float(np.mean(err > 1.0)), "bad3": float(np.mean(err > 3.0)),
            "epe": float(filled_err.mean()) if filled_err.size else float("nan"),
            "density": float(np.isfinite(err).mean()), "abs_rel": depth["abs_rel"],
            "rmse": depth["rmse"] if scene.calibrated else float("nan"), "a1": depth["a1"]}


def evaluate_stereo_scene(scene: StereoScene, engines: Sequence[str], backend: str = "auto", device: str = "auto",
                          planes: int = DEFAULT_PLANES, sweep_width: int = 0, edge_snap: bool = True,
                          depths: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """SGBM and each engine ('classical' or an artifact path) on the scene: name -> figures and time. The sweep
    works at `sweep_width` (0: the pipeline's automatic width; the scene's own is SGBM's). `depths`, if given,
    receives each method's depth (metres, NaN holes) under its name, for pictures."""
    from ..pipelines.stereo import StereoPipeline, StereoPipelineConfig

    lo, hi = _depth_range(scene)
    results: dict[str, Any] = {}
    t0 = time.perf_counter()
    disp = _sgbm_disparity(scene)
    results["sgbm"] = {**stereo_scores(scene, disp), "ms": (time.perf_counter() - t0) * 1e3}
    if depths is not None:
        depths["sgbm"] = scene.depth_from_disparity(disp)
    for engine in engines:
        pipe = StereoPipeline(StereoPipelineConfig(engine=engine, backend=backend, device=device, min_depth=lo,
                                                   max_depth=hi, planes=planes, edge_snap=edge_snap,
                                                   sweep_width=sweep_width))
        t0 = time.perf_counter()
        result = pipe.process(scene.left, scene.right, scene.camera, scene.baseline, right_camera=scene.right_camera)
        ms = (time.perf_counter() - t0) * 1e3
        name = "classical" if engine == "classical" else f"learned:{Path(pipe.name).name}"
        results[name] = {**stereo_scores(scene, scene.disparity_from_depth(result.depth)), "ms": ms}
        if "plane_step_px" in result.info:  # the sweep's plane spacing, in pixels of disparity where it swept
            results[name]["plane_step_px"] = float(result.info["plane_step_px"])
        if depths is not None:
            depths[name] = result.depth
    return {"scene": scene.name, "width": scene.camera.width, "height": scene.camera.height,
            "calibrated": scene.calibrated, "depth_range": [lo, hi], "planes": planes, "sweep_width": sweep_width,
            "edge_snap": edge_snap, "methods": results}


def evaluate_stereo_scenes(scenes: Sequence[StereoScene], engines: Sequence[str], **kwargs: Any) -> dict[str, Any]:
    """`evaluate_stereo_scene` on each scene; with several, each figure is the mean over them (a rig's pairs:
    every pair counts alike), `scenes` their number. `depths`, if given, receives the first scene's."""
    depths = kwargs.pop("depths", None)
    reports = [evaluate_stereo_scene(scene, engines, depths=depths if k == 0 else None, **kwargs)
               for k, scene in enumerate(scenes)]
    if len(reports) == 1:
        return reports[0]
    first = reports[0]
    methods = {name: {key: float(np.nanmean([r["methods"][name].get(key, np.nan) for r in reports]))
                      for key in row}
               for name, row in first["methods"].items()}
    prefix = os.path.commonprefix([s.name for s in scenes]).rstrip("0123456789") or "scenes"
    return {**first, "scene": f"{prefix} ({len(scenes)} pairs, mean)", "scenes": len(scenes),
            "depth_range": [min(r["depth_range"][0] for r in reports), max(r["depth_range"][1] for r in reports)],
            "methods": methods, "per_scene": {s.name: r["methods"] for s, r in zip(scenes, reports, strict=True)}}


REAL_STEREO_SCENES = ("motorcycle", "aloe", "chessboard")


def available_stereo_scenes() -> list[str]:
    """REAL_STEREO_SCENES that are here: Motorcycle always (scikit-image), the others once fetched."""
    here = {"motorcycle": True, "aloe": find_opencv_samples() is not None,
            "chessboard": find_opencv_samples(is_opencv_rig_folder) is not None}
    return [name for name in REAL_STEREO_SCENES if here[name]]


def stereo_summary(reports: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per scene and method, bad-3 and AbsRel as ratios to SGBM's in the same run (the issue's yardstick)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for scene, report in reports.items():
        sgbm = report["methods"]["sgbm"]
        out[scene] = {name: {"bad3_vs_sgbm": row["bad3"] / sgbm["bad3"] if sgbm["bad3"] > 0 else float("nan"),
                             "abs_rel_vs_sgbm": row["abs_rel"] / sgbm["abs_rel"] if sgbm["abs_rel"] > 0
                             else float("nan")}
                      for name, row in report["methods"].items() if name != "sgbm"}
    return out


def format_stereo_summary(summary: dict[str, dict[str, dict[str, float]]]) -> str:
    scenes = list(summary)
    methods = list(dict.fromkeys(m for rows in summary.values() for m in rows))
    lines = ["every real scene, each figure as a ratio to SGBM's in the same run (< 1: better than SGBM)",
             f"{'method':<30}" + "".join(f"{s[:11] + ' bad3':>17}{s[:11] + ' AbsRel':>19}" for s in scenes)]
    for m in methods:
        cells = []
        for s in scenes:
            row = summary[s].get(m)
            cells.append(f"{row['bad3_vs_sgbm']:>17.2f}{row['abs_rel_vs_sgbm']:>19.2f}" if row
                         else f"{'-':>17}{'-':>19}")
        lines.append(f"{m:<30}" + "".join(cells))
    return "\n".join(lines)


def summary_plot(path: str | Path, summary: dict[str, dict[str, dict[str, float]]]) -> None:
    """Bars of bad-3 and AbsRel against SGBM's (1 = SGBM, the dashed line), one group per scene."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..utils import atomic_path
    from .report import _picture_format

    scenes = list(summary)
    methods = list(dict.fromkeys(m for rows in summary.values() for m in rows))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    width = 0.8 / max(1, len(methods))
    for ax, key, label in ((axes[0], "bad3_vs_sgbm", "bad-3 (holes are errors)"),
                           (axes[1], "abs_rel_vs_sgbm", "AbsRel")):
        for k, m in enumerate(methods):
            values = [summary[s].get(m, {}).get(key, np.nan) for s in scenes]
            ax.bar(np.arange(len(scenes)) + (k - (len(methods) - 1) / 2) * width, values, width, label=m)
        ax.axhline(1.0, color="k", linestyle="--", linewidth=1)
        ax.axhline(0.7, color="grey", linestyle=":", linewidth=1)
        ax.set_xticks(np.arange(len(scenes)), scenes)
        ax.set_ylabel(f"{label} / SGBM's")
        ax.set_title(f"{label}: SGBM = 1 (dashed), 0.7 dotted")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format=_picture_format(path))
    plt.close(fig)


# ----------------------------------------------------------------------------------------------- completion

def scene_scanner_pattern(scene: StereoScene, beams: int = 64, seed: int = 0) -> np.ndarray:
    """The scene's ground truth as a `beams`-beam scanner 0.3 m above the camera would sample it."""
    return scanner_pattern(scene.depth, scene.camera, beams=beams, seed=seed)


def _nearest_fill(sparse: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    empty = sparse <= 0
    if empty.all():
        return np.full(sparse.shape, np.nan, np.float32)
    _, (iy, ix) = ndimage.distance_transform_edt(empty, return_indices=True)
    return sparse[iy, ix].astype(np.float32)


def evaluate_completion_scene(scene: StereoScene, engines: Sequence[str], patterns: dict[str, np.ndarray],
                              backend: str = "auto", device: str = "auto") -> dict[str, Any]:
    """Nearest-neighbour in-fill, the colour-guided in-fill (`geometry.infill.guided_prior`) and each engine
    ('classical' = IP-Basic, or an artifact) on each sparse pattern."""
    from ..geometry.infill import guided_prior
    from ..pipelines.completion import CompletionPipeline, CompletionPipelineConfig

    _check_metric(scene)
    lo, hi = _depth_range(scene)
    pipes = {}
    for engine in engines:
        pipe = CompletionPipeline(CompletionPipelineConfig(engine=engine, backend=backend, device=device,
                                                           min_depth=max(0.1, lo), max_depth=hi))
        pipes["ip_basic" if engine == "classical" else f"learned:{Path(pipe.name).name}"] = pipe
    out: dict[str, Any] = {}
    for pattern, sparse in patterns.items():
        held_out = np.isfinite(scene.depth) & (sparse <= 0)
        rows: dict[str, Any] = {"density": float((sparse > 0).mean())}
        t0 = time.perf_counter()
        pred = _nearest_fill(sparse)
        rows["nearest"] = {**completion_metrics(pred[held_out], scene.depth[held_out]),
                           "ms": (time.perf_counter() - t0) * 1e3}
        t0 = time.perf_counter()
        pred = guided_prior(scene.left, sparse)  # the colour-guided in-fill alone: a "guided" engine's prior
        rows["guided_fill"] = {**completion_metrics(pred[held_out], scene.depth[held_out]),
                               "ms": (time.perf_counter() - t0) * 1e3}
        for name, pipe in pipes.items():
            t0 = time.perf_counter()
            # drawn from the camera's own ground truth: measured from its viewpoint
            result = pipe.process_sparse(scene.left, scene.camera, sparse, sensor_offset_m=0.0)
            ms = (time.perf_counter() - t0) * 1e3
            pred = np.nan_to_num(result.depth, nan=hi)
            rows[name] = {**completion_metrics(pred[held_out], scene.depth[held_out]), "ms": ms}
        out[pattern] = rows
    return {"scene": scene.name, "width": scene.camera.width, "height": scene.camera.height, "patterns": out}


# ----------------------------------------------------------------------------------------------- monocular

def evaluate_mono_scene(scene: StereoScene, engine: str = "auto", backend: str = "auto", device: str = "auto",
                        depths: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """The monocular engine on the scene's left image, median-scaled and at its own scale, beside the constant
    (the truth's median everywhere). Rows: name -> depth metrics, `scale` (the median ratio applied; 1 at the
    engine's own scale) and `ms`. `depths`, if given, receives the engine's depth (its own scale) for pictures."""
    from ..pipelines.mono import MonoPipeline, MonoPipelineConfig

    _check_metric(scene)
    gt = scene.depth
    if not np.isfinite(gt).any():
        raise ValueError(f"scene {scene.name} has no valid ground-truth disparity")
    pipe = MonoPipeline(MonoPipelineConfig(engine=engine, backend=backend, device=device, scale_recovery="none"))
    t0 = time.perf_counter()
    pred, _, _ = pipe.predict(scene.left, scene.camera)
    ms = (time.perf_counter() - t0) * 1e3
    name = f"learned:{Path(pipe.name).name}"
    if depths is not None:
        depths[name] = pred
    rows: dict[str, Any] = {}
    constant = np.full(gt.shape, float(np.nanmedian(gt)), np.float32)
    for row, depth, median, took in (("constant", constant, True, 0.0), (f"{name} median-scaled", pred, True, ms),
                                     (f"{name} own scale", pred, False, ms)):
        scored = evaluate_depth(gt, depth, median_scaling=median, crop="none")
        if scored is None:
            raise ValueError(f"scene {scene.name} has no ground truth between the depth caps")
        metrics, scale = scored
        rows[row] = {**metrics, "scale": scale, "ms": took}
    return {"scene": scene.name, "width": scene.camera.width, "height": scene.camera.height, "engine": pipe.name,
            "metric": pipe.metric, "methods": rows}


def format_mono(report: dict[str, Any]) -> str:
    cols = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3", "scale", "ms")
    lines = [f"{report['scene']} ({report['width']}x{report['height']}), every pixel with ground truth; constant = the "
             "truth's median depth everywhere",
             f"{'method':<44}" + "".join(f"{c:>9}" for c in cols)]
    for name, row in report["methods"].items():
        lines.append(f"{name:<44}" + "".join(f"{row[c]:>9.4f}" if c != "ms" else f"{row[c]:>9.1f}" for c in cols))
    return "\n".join(lines)


def format_stereo(report: dict[str, Any]) -> str:
    cols = ("bad1", "bad3", "epe", "density", "abs_rel", "rmse", "a1", "ms")
    steps = sorted({round(r["plane_step_px"], 2) for r in report["methods"].values() if "plane_step_px" in r})
    spacing = f" ({' / '.join(f'{v:g}' for v in steps)} px of disparity apart)" if steps else ""
    lines = [f"{report['scene']} ({report['width']}x{report['height']}), holes count as errors; sweep "
             f"{report.get('planes', '?')} planes{spacing} at width {report.get('sweep_width') or 'auto'}, edge snap "
             f"{'on' if report.get('edge_snap', True) else 'off'}",
             f"{'method':<30}" + "".join(f"{c:>9}" for c in cols)]
    if not report.get("calibrated", True):
        lines.insert(1, "no calibration ships with this pair (doffs unknown, read as 0): abs_rel and a1 are of "
                        "f B / d, the disparity's ratios; rmse in metres does not exist")
    for name, row in report["methods"].items():
        lines.append(f"{name:<30}" + "".join(f"{row[c]:>9.4f}" if c == "abs_rel" else f"{row[c]:>9.3f}"
                                             for c in cols))
    return "\n".join(lines)


def format_completion(report: dict[str, Any]) -> str:
    cols = ("rmse_mm", "mae_mm", "irmse", "imae", "ms")
    lines = [f"{report['scene']} ({report['width']}x{report['height']}), scored on ground truth not given as input"]
    for pattern, rows in report["patterns"].items():
        lines.append(f"pattern {pattern} (density {rows['density']:.3f})")
        lines.append(f"  {'method':<30}" + "".join(f"{c:>10}" for c in cols))
        for name, row in rows.items():
            if name != "density":
                lines.append(f"  {name:<30}" + "".join(f"{row[c]:>10.1f}" for c in cols))
    return "\n".join(lines)


__all__ = ["evaluate_completion_scene", "evaluate_mono_scene", "evaluate_stereo_scene", "format_completion",
           "format_mono", "format_stereo", "load_scene",
           "random_pattern", "scanner_pattern", "scene_scanner_pattern", "stereo_scores"]
