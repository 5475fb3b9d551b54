"""Depth completion: LiDAR points (camera frame) + RGB -> dense depth, by IP-Basic or an NLSPN engine.

`CompletionPipeline(config).process(image_rgb, camera, points_cam)` projects the points into the camera
(`geometry.projection.points_to_sparse_depth`, nearest point per pixel) and calls `process_sparse`. A learned
engine runs at its fixed size through `engines.resize`, on the whole image resized or, where that would squash
it (`engine_fit`), on overlapping tiles of it scaled with its aspect kept: the image is resized (area), the sparse depth
scattered (never interpolated, so no points are blended), and depth and confidence are restored to the
camera's pixels (nearest, so no depth is invented between surfaces). Measured pixels get their measurement back.
An engine with a `prior_depth` input (sidecar `"prior": "ipbasic"` or `"guided"`) is also given the range-blind
in-fill it was trained on (`geometry.infill.completion_prior`: IP-Basic, or the colour-guided fill over it) of the
engine-sized sparse depth. Its output
is then read as a correction: the ratio of its depth to that in-fill is restored (bilinear) to the camera's pixels
and applied to the same in-fill computed there, so a camera larger than the engine keeps its own resolution's
edges and an engine that changes nothing returns the classical in-fill exactly.

Depth measured from the camera's own viewpoint (`sensor_offset_m` at most `REGISTERED_OFFSET_M`: a registered
depth image, a pattern drawn from the camera's ground truth) that covers the image (`infill_coverage_px`) is
in-filled by the colour-guided fill alone, which beats the engine there; a cloud projected from an offset
sensor, or one whose sensor is not known, always goes through the engine, which learned the parallax
(background points seen by the LiDAR behind a foreground edge) that the in-fill would trust
(docs/engines/completion.md).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..engines.resize import (
    EngineTiles,
    image_to_input,
    keeps_aspect,
    restore_map,
)
from ..geometry.camera import PinholeCamera
from ..geometry.infill import (
    COMPLETION_PRIORS,
    IpBasicConfig,
    completion_prior,
    covered_within,
    distance_confidence,
    ipbasic_complete,
)
from ..geometry.projection import points_to_sparse_depth
from ..geometry.resample import resize_image, resize_sparse_depth
from .base import DepthResult, check_engine_and_range, open_engine, resolve_engine_path
from .settings import EngineSettings, check_settings, confidence_setting, max_depth_setting, min_depth_setting, setting


def default_engine_path() -> Path | None:
    """The shipped NLSPN engine (`completion_default.onnx` + .json) if one is installed, else None."""
    from ..engines import default_engine_path as engines_default

    path = engines_default("completion")
    return Path(path) if path is not None and Path(path).exists() else None


@dataclass
class CompletionPipelineConfig(EngineSettings):
    """engine: "classical" (IP-Basic), "auto" (the shipped NLSPN engine if present, else classical), an engine
    artifact path, or a training checkpoint folder (run in torch). Fields made with `setting` are the completion
    node's parameters."""

    min_depth: float = min_depth_setting(0.5)
    max_depth: float = max_depth_setting(90.0)
    confidence_threshold: float = confidence_setting()
    preserve_measurements: bool = True
    classical_blur: str = "bilateral"
    classical_extrapolate: bool = True
    engine_fit: str = setting("auto", "how a camera of another size reaches a learned engine: 'resize' (squashed to "
                              "the engine's size), 'tiles' (scaled with its aspect ratio kept, run as overlapping "
                              "tiles and blended), 'auto' (tiles where resizing would squash the image by over "
                              "10%)", choices=("auto", "resize", "tiles"))
    propagation_iterations: int = setting(0, "NLSPN propagation steps at run time (0 = as the engine was trained; "
                                          "a classical engine ignores it)", 0, 64)
    infill_coverage_px: float = setting(4.5, "an engine over the colour-guided in-fill: where 90% of the pixels lie "
                                        "within this many pixels (at the engine's scale) of a measurement taken "
                                        "from the camera's own viewpoint (a cloud whose frame is within 2 cm of "
                                        "the camera's), the in-fill alone is the output and the engine does not "
                                        "run; a LiDAR offset from the camera always goes through the engine "
                                        "(0 = always run the engine)", 0.0, 64.0)

    def __post_init__(self) -> None:
        check_settings(self)
        check_engine_and_range(self.engine, self.min_depth, self.max_depth,
                               "'classical', 'auto' or an engine artifact path")
        if self.classical_blur not in ("bilateral", "gaussian", "none"):
            raise ValueError(f"classical_blur must be 'bilateral', 'gaussian' or 'none', got {self.classical_blur!r}")


REGISTERED_OFFSET_M = 0.02  # m: a sensor this close to the camera sees what it sees (no parallax between them)


class CompletionPipeline:
    def __init__(self, config: CompletionPipelineConfig | None = None) -> None:
        self.config = config or CompletionPipelineConfig()
        cfg = self.config
        engine_path, self.fallback = resolve_engine_path(cfg.engine, "completion", default_engine_path)
        self.engine: Any = None
        self.ipbasic = IpBasicConfig(max_depth=max(100.0, cfg.max_depth + 10.0), extrapolate=cfg.classical_extrapolate,
                                     blur=cfg.classical_blur)
        if engine_path is None:
            self.name = "classical"
            return
        self.engine = open_engine(engine_path, "completion", cfg.backend, cfg.device)
        spec = self.engine.spec
        shapes = {i["name"]: i["shape"] for i in spec["inputs"]}
        if "image" not in shapes or "sparse_depth" not in shapes:
            raise ValueError(f"engine {engine_path} lacks the inputs 'image' and 'sparse_depth': {sorted(shapes)}")
        self.engine_height, self.engine_width = int(shapes["image"][2]), int(shapes["image"][3])
        self.prior = str(spec.get("prior", "none"))
        if ("prior_depth" in shapes) != (self.prior != "none") or self.prior not in COMPLETION_PRIORS:
            raise ValueError(f"engine {engine_path}: input prior_depth and sidecar prior {self.prior!r} disagree "
                             "(a prior_depth input needs \"prior\": \"ipbasic\" or \"guided\")")
        self.name = str(engine_path)
        self._set_iterations(cfg.propagation_iterations)

    def _set_iterations(self, iterations: int) -> None:
        """Change T where the engine is a torch module; a fixed graph (ONNX, TensorRT) keeps the T it was built with."""
        if iterations == 0:
            return
        model = getattr(self.engine, "model", None)
        propagation = getattr(model, "propagation", None)
        if propagation is not None:
            propagation.iterations = int(iterations)
            return
        built = self.engine.spec.get("iterations")
        if built is not None and int(built) != iterations:
            raise ValueError(f"propagation_iterations={iterations}: engine {self.name} is a fixed graph with {built} "
                             "iterations; export one with --iterations N or use 0")

    def sparse_from_points(self, points_cam: np.ndarray, camera: PinholeCamera) -> np.ndarray:
        """Points (N, 3+) in the camera optical frame -> sparse depth (H, W), 0 = none."""
        pts = np.asarray(points_cam, dtype=np.float32)
        if pts.ndim != 2 or pts.shape[1] < 3:
            raise ValueError(f"points_cam must be (N, 3), got shape {pts.shape}")
        pts = pts[np.isfinite(pts[:, :3]).all(1), :3]
        return points_to_sparse_depth(pts, camera, self.config.min_depth, self.config.max_depth)

    def process(self, image_rgb: np.ndarray, camera: PinholeCamera, points_cam: np.ndarray,
                sensor_offset_m: float | None = None) -> DepthResult:
        """`sensor_offset_m`: the distance (m) from the camera to the sensor the points came from (the translation
        of T_cam_sensor); None = not known."""
        t0 = time.perf_counter()
        sparse = self.sparse_from_points(points_cam, camera)
        project_ms = (time.perf_counter() - t0) * 1e3
        result = self.process_sparse(image_rgb, camera, sparse, sensor_offset_m)
        result.timings_ms["project"] = project_ms
        result.timings_ms["total"] += project_ms
        return result

    def process_sparse(self, image_rgb: np.ndarray, camera: PinholeCamera, sparse_depth: np.ndarray,
                       sensor_offset_m: float | None = None) -> DepthResult:
        """Dense depth from an image and a sparse depth map (H, W) metres, 0 or NaN = no measurement.
        `sensor_offset_m`: how far from the camera the sparse depth was measured (0 for a registered depth image);
        None = not known, as for a LiDAR projected by someone else."""
        image = np.asarray(image_rgb)
        sparse = np.nan_to_num(np.asarray(sparse_depth, dtype=np.float32), nan=0.0)
        if image.shape[:2] != camera.shape:
            raise ValueError(f"image {image.shape[:2]} does not match the camera {camera.shape}")
        if sparse.shape != camera.shape:
            raise ValueError(f"sparse_depth {sparse.shape} does not match the camera {camera.shape}")
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, 2)
        if sensor_offset_m is not None and not (np.isfinite(sensor_offset_m) and sensor_offset_m >= 0):
            raise ValueError(f"sensor_offset_m must be a distance >= 0 m or None, got {sensor_offset_m!r}")
        cfg = self.config
        sparse = np.where((sparse >= cfg.min_depth) & (sparse <= cfg.max_depth), sparse, 0.0).astype(np.float32)
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        infill_only = False
        if self.engine is None:
            depth = ipbasic_complete(sparse, self.ipbasic)
            conf = distance_confidence(sparse)
        else:
            registered = sensor_offset_m is not None and float(sensor_offset_m) <= REGISTERED_OFFSET_M
            depth, conf, infer_ms = self._learned(image, sparse, camera, registered)
            infill_only = infer_ms is None
            if infer_ms is not None:
                timings["infer"] = infer_ms
        measured = sparse > 0
        if cfg.preserve_measurements:
            depth = np.where(measured, sparse, depth)
        conf = np.clip(np.nan_to_num(conf), 0.0, 1.0).astype(np.float32)
        bad = ~np.isfinite(depth) | (depth <= 0) | (conf < cfg.confidence_threshold)
        depth = np.where(bad, np.nan, np.clip(depth, cfg.min_depth, cfg.max_depth)).astype(np.float32)
        timings["total"] = (time.perf_counter() - t0) * 1e3
        return DepthResult(depth, conf, camera, timings, None,
                           {"measurements": float(measured.sum()), "infill_only": float(infill_only)})

    def _tiles(self, camera: PinholeCamera) -> EngineTiles:
        """How the camera reaches the engine (`engine_fit`): squashed to its size, or tiled with the aspect kept."""
        h, w = self.engine_height, self.engine_width
        fit = self.config.engine_fit
        if fit == "auto":
            fit = "resize" if keeps_aspect(camera, h, w) else "tiles"
        return EngineTiles.squashed(camera, h, w) if fit == "resize" else EngineTiles.for_engine(camera, h, w)

    def _learned(self, image: np.ndarray, sparse: np.ndarray, camera: PinholeCamera,
                 registered: bool = False) -> tuple[Any, ...]:
        """Depth, confidence at the camera's pixels and ms in the engine, resized or tiled (`engine_fit`). With
        `infill_coverage_px`, `registered` measurements that cover the engine-sized image leave the in-fill nothing
        to propagate across: it is returned alone, and the ms are None."""
        h, w = self.engine_height, self.engine_width
        tiles = self._tiles(camera)
        scaled = tiles.scaled
        small = resize_sparse_depth(sparse, scaled.width, scaled.height)
        radius = self.config.infill_coverage_px
        if self.prior == "guided" and registered and radius > 0 and covered_within(small, radius):
            return completion_prior(self.prior, image, sparse), distance_confidence(sparse), None
        small_image = resize_image(image, scaled.width, scaled.height)
        prior_small = completion_prior(self.prior, small_image, small) if self.prior != "none" else None
        depths, confs = [], []
        t0 = time.perf_counter()
        for y, x in tiles.origins:
            win = np.s_[y:y + h, x:x + w]
            inputs = {"image": image_to_input(small_image[win]),
                      "sparse_depth": np.ascontiguousarray(small[win])[None, None].astype(np.float32)}
            if prior_small is not None:
                inputs["prior_depth"] = np.ascontiguousarray(prior_small[win])[None, None]
            out = self.engine.infer(**inputs)
            depths.append(out["depth"].reshape(h, w))
            confs.append(out["confidence"].reshape(h, w))
        infer_ms = (time.perf_counter() - t0) * 1e3
        depth_small, conf_small = tiles.blend(depths), tiles.blend(confs)
        confidence = restore_map(conf_small, camera)
        if prior_small is None:
            return restore_map(depth_small, camera), confidence, infer_ms
        with np.errstate(divide="ignore", invalid="ignore"):
            # measured pixels hold their measurement, not a correction of the in-fill: they correct nothing
            ratio = np.where((prior_small > 0) & (small <= 0), depth_small / prior_small, 1.0)
        ratio = np.nan_to_num(ratio, nan=1.0, posinf=1.0)
        if scaled.shape == camera.shape:
            return np.nan_to_num(prior_small * ratio, nan=0.0), confidence, infer_ms
        full = completion_prior(self.prior, image, sparse)
        return np.nan_to_num(full * restore_map(ratio, camera, "bilinear"), nan=0.0), confidence, infer_ms
