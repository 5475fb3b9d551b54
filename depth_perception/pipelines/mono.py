"""Monocular depth: run a mono engine on one image and give metric depth in the camera's own pixels.

The engine sees the image resized to its fixed size; its inverse depth is resized back (bilinear, as
monodepth2's evaluation does) and inverted. A metric engine (sidecar `metric: true`: mono+stereo or
LiDAR-supervised training) is used as is. A relative one (self-supervised from video) is scaled by the camera's
known mounting height: the road plane is fitted (RANSAC, then least squares on the inliers) to the
back-projected points of the lower-middle image, scale = camera_height / fitted height, smoothed over frames
with an exponential moving average. Median scaling against ground truth belongs to evaluation only.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..geometry.camera import PinholeCamera
from ..geometry.projection import backproject
from .base import DepthResult, check_engine_and_range
from .settings import EngineSettings, check_settings, confidence_setting, max_depth_setting, min_depth_setting, setting

DEFAULT_ENGINE_NAME = "mono_default.onnx"
SCALE_RECOVERY = ("auto", "camera_height", "none")
# Lower-middle image region searched for the road: rows and columns as fractions of the image.
GROUND_ROWS = (0.65, 0.98)
GROUND_COLS = (0.3, 0.7)


def default_engine_path() -> Path | None:
    """The shipped mono engine (engines/mono_default.onnx with its sidecar), or None."""
    from ..engines import default_engine_path as shipped

    return shipped("mono")


@dataclass
class MonoPipelineConfig(EngineSettings):
    """engine: "auto" (the shipped engine), an artifact path, or a training checkpoint folder (run in torch).

    scale_recovery: "auto" (camera_height for relative engines, none for metric ones), "camera_height", "none".
    scale_smoothing: weight of the previous scale in the moving average (0 = use each frame's own estimate).
    min_depth / max_depth: the published range; depth outside it becomes NaN, as does depth whose confidence is
    below confidence_threshold. Fields made with `setting` are the mono node's parameters.
    """

    min_depth: float = min_depth_setting(0.1)
    max_depth: float = max_depth_setting(80.0)
    confidence_threshold: float = confidence_setting()
    scale_recovery: str = setting("auto", "metric scale: 'auto' (camera_height for a relative engine, the engine's "
                                  "own scale for a metric one), 'camera_height' (always from the ground plane) or "
                                  "'none'", choices=SCALE_RECOVERY)
    camera_height: float = setting(1.65, "camera height above a flat ground (m), which scales a relative engine's "
                                   "depth", 0.05, 10.0)
    scale_smoothing: float = 0.9
    ransac_iterations: int = 100
    min_ground_inliers: float = 0.3

    def __post_init__(self) -> None:
        check_settings(self)
        check_engine_and_range(self.engine, self.min_depth, self.max_depth,
                               "'auto', an engine artifact path or a checkpoint folder")
        if not 0.0 <= self.scale_smoothing < 1.0:
            raise ValueError(f"scale_smoothing must be in [0, 1), got {self.scale_smoothing}")
        if self.ransac_iterations < 1:
            raise ValueError(f"ransac_iterations must be >= 1, got {self.ransac_iterations}")
        if not 0.0 < self.min_ground_inliers <= 1.0:
            raise ValueError(f"min_ground_inliers must be in (0, 1], got {self.min_ground_inliers}")


@dataclass
class GroundFit:
    """Plane n . X + d = 0 (n unit, pointing down the camera's y axis); `height` = -d, the camera's height."""

    normal: np.ndarray
    height: float
    inlier_ratio: float


def fit_ground_plane(
    points: np.ndarray, iterations: int = 100, max_tilt_deg: float = 25.0, seed: int = 0
) -> GroundFit | None:
    """RANSAC + least-squares road plane through (N, 3) camera-frame points (y down); None if none fits.

    The inlier threshold is 5 % of the points' median height below the camera, so the fit is the same for
    depth known only up to scale. Planes tilted more than `max_tilt_deg` from horizontal are refused.
    """
    pts = np.asarray(points, np.float64)
    pts = pts[np.all(np.isfinite(pts), axis=1) & (pts[:, 2] > 0) & (pts[:, 1] > 0)]
    if len(pts) < 10:
        return None
    rng = np.random.default_rng(seed)
    if len(pts) > 4000:
        pts = pts[rng.choice(len(pts), 4000, replace=False)]
    thresh = 0.05 * float(np.median(pts[:, 1]))
    min_ny = np.cos(np.deg2rad(max_tilt_deg))
    samples = rng.integers(0, len(pts), size=(iterations, 3))
    a, b, c = pts[samples[:, 0]], pts[samples[:, 1]], pts[samples[:, 2]]
    normals = np.cross(b - a, c - a)
    norms = np.linalg.norm(normals, axis=1)
    ok = norms > 1e-12
    normals[ok] /= norms[ok, None]
    normals *= np.where(normals[:, 1:2] < 0, -1.0, 1.0)
    ok &= normals[:, 1] >= min_ny
    if not ok.any():
        return None
    normals, a = normals[ok], a[ok]
    d = -(normals * a).sum(1)
    residuals = np.abs(pts @ normals.T + d[None, :])  # (N, hypotheses)
    counts = (residuals < thresh).sum(0)
    best = int(np.argmax(counts))
    inliers = residuals[:, best] < thresh
    # Least squares on the inliers: the normal is the direction of least spread.
    sel = pts[inliers]
    centroid = sel.mean(0)
    _, _, vt = np.linalg.svd(sel - centroid, full_matrices=False)
    n = vt[-1] * (1.0 if vt[-1][1] >= 0 else -1.0)
    if n[1] < min_ny:
        return None
    height = float(n @ centroid)
    if not height > 0:
        return None
    return GroundFit(n, height, float(inliers.mean()))


def _open_engine(path: Path, backend: str, device: str) -> Any:
    """An engine artifact via load_engine, or a checkpoint folder in torch (its `metric` from the run's mode)."""
    if path.is_dir():
        if not (path / "checkpoint.json").exists():
            raise FileNotFoundError(f"{path} is a folder without checkpoint.json")
        from ..training.checkpoint import read_meta
        from .base import CheckpointEngine

        engine = CheckpointEngine(path, device)
        meta = read_meta(path)
        engine.spec["metric"] = bool(meta.get("metric", meta.get("mode", "mono") != "mono"))
        engine.spec["depth_range"] = engine.model.io_spec()["depth_range"]
        return engine
    from ..engines import load_engine

    return load_engine(str(path), backend=backend, device=device)


class MonoPipeline:
    def __init__(self, config: MonoPipelineConfig | None = None) -> None:
        self.config = config or MonoPipelineConfig()
        cfg = self.config
        if cfg.engine == "auto":
            found = default_engine_path()
            if found is None:
                raise FileNotFoundError(
                    f"no shipped mono engine ({DEFAULT_ENGINE_NAME}) found: pass an engine artifact or a checkpoint "
                    "folder (train one with `depth-perception train mono ... --export ENGINE.onnx`)"
                )
            path = found
        else:
            path = Path(cfg.engine)
            if not path.exists():
                raise FileNotFoundError(f"mono engine not found: {path}")
        from ..engines import EngineError, missing_runtime

        why = missing_runtime()
        if why is not None:  # monocular depth has no classical engine to fall back to
            raise EngineError(f"the mono node needs a learned engine, and {why}")
        self.engine = _open_engine(path, cfg.backend, cfg.device)
        spec = self.engine.spec
        if spec.get("kind") != "mono":
            raise ValueError(f"engine {path} is a {spec.get('kind')!r} engine, not 'mono'")
        shape = next(i["shape"] for i in spec["inputs"] if i["name"] == "image")
        self.engine_height, self.engine_width = int(shape[2]), int(shape[3])
        self.metric = bool(spec.get("metric", False))
        self.name = str(path)
        self._scale: float | None = None

    @property
    def uses_camera_height(self) -> bool:
        mode = self.config.scale_recovery
        return mode == "camera_height" or (mode == "auto" and not self.metric)

    def reset(self) -> None:
        """Forget the smoothed scale (a new sequence or a moved camera)."""
        self._scale = None

    def predict(self, image_rgb: np.ndarray, camera: PinholeCamera) -> tuple[np.ndarray, np.ndarray, float]:
        """The engine's depth (its own scale) at the camera's resolution, at the engine's size, and ms taken."""
        from ..engines.resize import EngineResize

        img = np.asarray(image_rgb)
        if img.shape[:2] != camera.shape:
            raise ValueError(f"image {img.shape[:2]} does not match the camera {camera.shape}")
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, 2)
        H, W = self.engine_height, self.engine_width
        resize = EngineResize.for_engine(camera, H, W)
        x = resize.image_input(img)
        t0 = time.perf_counter()
        out = self.engine.infer(image=x)
        ms = (time.perf_counter() - t0) * 1e3
        depth_small = np.asarray(out["depth"], np.float32).reshape(H, W)
        if resize.identity:
            return depth_small, depth_small, ms
        inv = resize.restore(1.0 / np.maximum(depth_small, 1e-6), mode="bilinear")  # monodepth2 resizes disparity
        return (1.0 / np.maximum(inv, 1e-9)).astype(np.float32), depth_small, ms

    def estimate_scale(self, depth: np.ndarray, camera: PinholeCamera) -> tuple[float | None, GroundFit | None]:
        """This frame's camera_height / fitted ground height (None where no plane fits)."""
        h, w = depth.shape
        cam = camera if camera.shape == (h, w) else camera.scaled(w, h)
        r0, r1 = int(GROUND_ROWS[0] * h), int(GROUND_ROWS[1] * h)
        c0, c1 = int(GROUND_COLS[0] * w), int(GROUND_COLS[1] * w)
        pts = backproject(depth, cam)[r0:r1, c0:c1].reshape(-1, 3)
        fit = fit_ground_plane(pts, self.config.ransac_iterations)
        if fit is None or fit.inlier_ratio < self.config.min_ground_inliers:
            return None, fit
        return self.config.camera_height / fit.height, fit

    def update_scale(self, measured: float | None) -> float:
        """Fold one frame's scale into the moving average; a frame without a ground fit keeps the last scale
        (1.0, i.e. the engine's own units, until a first fit)."""
        if measured is not None:
            a = self.config.scale_smoothing
            self._scale = measured if self._scale is None else a * self._scale + (1 - a) * measured
        return self._scale if self._scale is not None else 1.0

    def process(self, image_rgb: np.ndarray, camera: PinholeCamera) -> DepthResult:
        """Depth in metres at the camera's pixels (NaN outside [min_depth, max_depth]); info carries the scale."""
        cfg = self.config
        t0 = time.perf_counter()
        depth, depth_small, infer_ms = self.predict(image_rgb, camera)
        info: dict[str, float] = {"metric": float(self.metric)}
        scale = 1.0
        if self.uses_camera_height:
            t1 = time.perf_counter()
            measured, fit = self.estimate_scale(depth_small, camera)
            scale = self.update_scale(measured)
            if measured is not None:
                info["scale_measured"] = float(measured)
            info["ground_inliers"] = float(fit.inlier_ratio) if fit is not None else 0.0
            info["scale_valid"] = float(measured is not None)
            info["scale_ms"] = (time.perf_counter() - t1) * 1e3
        info["scale"] = float(scale)
        depth = depth * np.float32(scale)
        bad = ~np.isfinite(depth) | (depth < cfg.min_depth) | (depth > cfg.max_depth)
        confidence = (~bad).astype(np.float32)  # a monocular engine has no confidence: valid or not
        depth = np.where(bad | (confidence < cfg.confidence_threshold), np.nan, depth).astype(np.float32)
        timings = {"total": (time.perf_counter() - t0) * 1e3, "infer_ms": infer_ms}
        if "scale_ms" in info:
            timings["scale_ms"] = info.pop("scale_ms")
        return DepthResult(depth, confidence, camera, timings, None, info)
