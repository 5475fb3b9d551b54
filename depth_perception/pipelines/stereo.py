"""Stereo / multi-view depth: the classical plane sweep or a learned DPSNet engine, in the camera's own pixels.

`StereoPipeline(config).process(left, right, camera, baseline, extra_views=())` -> DepthResult. The left image
is the reference; the right image (T_right_left = [I | (-baseline, 0, 0)] unless given) and any extra views
`(image, T_src_ref)` are sources. A right camera whose intrinsics differ from the left's (`right_camera`: a
principal point offset, as Middlebury's doffs, or another focal length) is reprojected onto the left camera's
intrinsics first, so both engines see one K. Images are resized to the engine's fixed size (or to the classical sweep's
working width) with the intrinsics, and depth is restored to the camera's resolution.

An engine with the sidecar key `"prior": "classical"` (`models.stereo_refine`) refines the classical sweep: the
pair is scaled uniformly (aspect kept) until it covers one engine tile, swept there, the sweep's holes filled
from the background (`geometry.infill.stereo_prior`), and the engine runs on full-width strips of it
(`engines.resize.EngineTiles`), blended where they overlap.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..engines.resize import EngineTiles, reproject_to_camera, restore_map
from ..geometry.camera import PinholeCamera
from ..geometry.infill import STEREO_HOLE_FILLS, snap_depth_edges, stereo_prior
from ..geometry.plane_sweep import rectified_baseline, rectified_pose
from ..geometry.resample import resize_image, unit_rgb
from .base import DepthResult, check_engine_and_range, open_engine, resolve_engine_path
from .settings import EngineSettings, check_settings, confidence_setting, max_depth_setting, min_depth_setting, setting
from .stereo_classical import DEFAULT_PLANES, ClassicalStereo, ClassicalSweepConfig


def default_engine_path(device: str = "auto") -> Path | None:
    """The shipped learned engine, or None: for `device` 'cpu', and for 'auto' on a machine without a GPU,
    `stereo_cpu.onnx` where installed (the same network at 320x96 on a sweep at half size: several frames a
    second at 640x192 on two cores, issue 19); else `stereo_default.onnx` (640x192)."""
    from ..engines import default_engine_path as shipped
    from ..engines import gpu_available

    if device == "cpu" or (device == "auto" and not gpu_available()):
        found = shipped("stereo", "cpu")
        if found is not None:
            return found
    return shipped("stereo")


CLASSICAL_WIDTH = 640  # the classical sweep alone works at most this wide by default (~1 s per frame on 2 cores)


@dataclass
class StereoPipelineConfig(EngineSettings):
    """engine: "classical", "auto" (the shipped learned engine if present, else classical), an artifact path,
    or a training checkpoint folder (run in torch). Fields made with `setting` are the stereo node's parameters."""

    planes: int = setting(DEFAULT_PLANES, "depth planes of the sweep, uniform in inverse depth", 3, 512)
    min_depth: float = min_depth_setting(1.0)
    max_depth: float = max_depth_setting(80.0)
    confidence_threshold: float = confidence_setting()
    sweep_width: int = setting(0, "width (px) the classical sweep works at, alone or under a refinement engine; "
                               "the depth is restored to the camera's pixels; 0: automatic (alone at most 640, under "
                               "an engine the engine's tile size); never above the camera's width nor below the "
                               "engine's tile (time grows with the pixels)", 0, 8192)
    edge_snap: bool = setting(True, "move depth steps onto the image's colour edges: the pixels at each step are "
                              "re-estimated from their neighbours by a colour-guided fill, where the depth is "
                              "computed (undoes window matching's foreground fattening; about 40 ms a 640x192 "
                              "frame on 2 CPU cores)")
    lr_check: bool = True

    def __post_init__(self) -> None:
        check_settings(self)
        check_engine_and_range(self.engine, self.min_depth, self.max_depth,
                               "'classical', 'auto' or an engine artifact path")


def _restore(values: np.ndarray, camera: PinholeCamera) -> np.ndarray:
    """Back to the camera's pixels (nearest, on the pixel-centre convention the scaled intrinsics use): NaN holes
    and depth edges stay honest. (H, W) or (H, W, C)."""
    if values.ndim == 3:
        return np.stack([restore_map(values[..., c], camera) for c in range(values.shape[2])], axis=-1)
    return restore_map(values, camera)


def _chw(img: np.ndarray) -> np.ndarray:
    """An image (H, W[, 3]) as the engines' float32 (3, H, W) in [0, 1] (`geometry.resample.unit_rgb`)."""
    return unit_rgb(img).transpose(2, 0, 1)


class StereoPipeline:
    def __init__(self, config: StereoPipelineConfig | None = None) -> None:
        self.config = config or StereoPipelineConfig()
        cfg = self.config
        engine_path, self.fallback = resolve_engine_path(cfg.engine, "stereo", lambda: default_engine_path(cfg.device))
        self.engine: Any = None
        self.classical: ClassicalStereo | None = None
        self.prior = "none"
        self.hole_fill = "rows"
        if engine_path is not None:
            self.engine = open_engine(engine_path, "stereo", cfg.backend, cfg.device)
            spec = self.engine.spec
            shapes = {i["name"]: i["shape"] for i in spec["inputs"]}
            self.engine_height, self.engine_width = int(shapes["reference"][2]), int(shapes["reference"][3])
            self.engine_views = int(shapes["sources"][1])
            self.name = str(engine_path)
            self.prior = str(spec.get("prior", "none"))
            if ("prior_depth" in shapes) != (self.prior == "classical") or self.prior not in ("none", "classical"):
                raise ValueError(f"engine {engine_path}: input prior_depth and sidecar prior {self.prior!r} disagree "
                                 "(a prior_depth input needs \"prior\": \"classical\")")
            bounds = spec.get("depth_range", (0.0, float("inf")))
            try:
                lo, hi = (float(v) for v in bounds)
            except (TypeError, ValueError):
                raise ValueError(f"engine {engine_path}: sidecar depth_range {bounds!r} is not two numbers "
                                 "[min, max] in metres") from None
            if cfg.min_depth < lo or cfg.max_depth > hi:
                raise ValueError(f"engine {engine_path} covers depths {lo:g}-{hi:g} m: min_depth {cfg.min_depth:g} / "
                                 f"max_depth {cfg.max_depth:g} reach outside it (a surface there would read as the "
                                 "engine's bound); narrow them, or use engine: classical")
            self.hole_fill = str(spec.get("hole_fill", "rows"))
            if self.hole_fill not in STEREO_HOLE_FILLS:
                raise ValueError(f"engine {engine_path}: sidecar hole_fill {self.hole_fill!r} is not one of "
                                 f"{STEREO_HOLE_FILLS}")
        if engine_path is None or self.prior == "classical":
            self.classical = ClassicalStereo(ClassicalSweepConfig(
                min_depth=cfg.min_depth, max_depth=cfg.max_depth, planes=cfg.planes, lr_check=cfg.lr_check,
            ))
        if engine_path is None:
            self.name = "classical"

    def process(
        self,
        left: np.ndarray,
        right: np.ndarray,
        camera: PinholeCamera,
        baseline: float,
        extra_views: Sequence[tuple[np.ndarray, np.ndarray]] = (),
        T_right_left: np.ndarray | None = None,
        right_camera: PinholeCamera | None = None,
    ) -> DepthResult:
        left, right = np.asarray(left), np.asarray(right)
        for name, img in (("left", left), ("right", right)):
            if img.shape[:2] != camera.shape:
                raise ValueError(f"{name} image {img.shape[:2]} does not match the camera {camera.shape}")
        if right_camera is not None:
            right = reproject_to_camera(right, right_camera, camera)
        if T_right_left is None:
            if not baseline > 0:
                raise ValueError(f"baseline must be > 0 metres, got {baseline}")
            T_right_left = rectified_pose(baseline)
        views = [(right, np.asarray(T_right_left, np.float64))]
        for k, (img, T) in enumerate(extra_views):
            if np.asarray(img).shape[:2] != camera.shape:
                shape = np.asarray(img).shape[:2]
                raise ValueError(f"extra view {k} image {shape} does not match the camera {camera.shape}")
            views.append((np.asarray(img), np.asarray(T, np.float64)))
        t0 = time.perf_counter()
        if self.engine is None:
            depth, conf, normals, info = self._classical(left, views, camera)
        elif self.prior == "classical":
            depth, conf, normals, info = self._refined(left, views[0], camera)
        else:
            depth, conf, normals, info = self._learned(left, views, camera)
        conf = np.clip(np.nan_to_num(conf), 0.0, 1.0).astype(np.float32)
        cfg = self.config
        bad = ~np.isfinite(depth) | (depth <= 0) | (conf < cfg.confidence_threshold)
        depth = np.where(bad, np.nan, depth).astype(np.float32)
        timings = {"total": (time.perf_counter() - t0) * 1e3}
        timings.update({k: v for k, v in info.items() if k.endswith("_ms")})
        extra = {k: v for k, v in info.items() if not k.endswith("_ms")}
        return DepthResult(depth, conf, camera, timings, normals, extra)

    def _classical(self, left, views, camera):
        assert self.classical is not None
        scale = min(1.0, (self.config.sweep_width or CLASSICAL_WIDTH) / camera.width)
        w, h = max(8, round(camera.width * scale)), max(8, round(camera.height * scale))
        cam = camera.scaled(w, h) if (w, h) != (camera.width, camera.height) else camera
        small = [(resize_image(img, w, h), T) for img, T in views]
        left_small = resize_image(left, w, h)
        depth, conf, info = self.classical.compute(left_small, small, cam)
        depth = self._snap(left_small, depth, cam, views[0][1], info)
        return _restore(depth, camera), _restore(conf, camera), None, info

    def _refined(self, left, view, camera):
        """The classical sweep at the engine tiles' scale, refined tile by tile (full-width strips, aspect kept)."""
        assert self.classical is not None
        right, T = view
        baseline = rectified_baseline(T)
        if baseline is None:
            raise ValueError("this engine refines a rectified pair: the right view's pose must be [I | (-b, 0, 0)]")
        H, W = self.engine_height, self.engine_width
        tiles = EngineTiles.for_engine(camera, H, W, scale=min(1.0, self.config.sweep_width / camera.width))
        scaled = tiles.scaled
        left_s, right_s = resize_image(left, scaled.width, scaled.height), resize_image(right, scaled.width,
                                                                                         scaled.height)
        t0 = time.perf_counter()
        depth, conf, info = self.classical.compute(left_s, [(right_s, T)], scaled)
        sweep_ms = (time.perf_counter() - t0) * 1e3
        snap: dict[str, float] = {}
        depth = self._snap(left_s, depth, scaled, T, snap)  # the prior's steps on the colour edges (holes kept)
        prior, prior_conf = stereo_prior(depth, conf, scaled.fx * baseline, self.config.max_depth,
                                         image=left_s if self.hole_fill == "guided" else None)
        ref_all, right_all = _chw(left_s), _chw(right_s)
        pose = np.asarray(T, np.float32)[None, None]
        depths, confs = [], []
        t0 = time.perf_counter()
        for y, x in tiles.origins:
            win = np.s_[y:y + H, x:x + W]
            K = scaled.K.astype(np.float32).copy()
            K[0, 2] -= x
            K[1, 2] -= y
            out = self.engine.infer(
                reference=np.ascontiguousarray(ref_all[(slice(None),) + win])[None],
                sources=np.ascontiguousarray(right_all[(slice(None),) + win])[None, None],
                intrinsics=K[None], poses=pose,
                prior_depth=np.ascontiguousarray(prior[win])[None, None],
                prior_confidence=np.ascontiguousarray(prior_conf[win])[None, None],
            )
            depths.append(np.asarray(out["depth"], np.float32).reshape(H, W))
            confs.append(np.asarray(out["confidence"], np.float32).reshape(H, W))
        infer_ms = (time.perf_counter() - t0) * 1e3
        timings = {"sweep_ms": sweep_ms, "infer_ms": infer_ms, "tiles": float(len(tiles.origins)),
                   "prior_valid_fraction": info["valid_fraction"], **snap}
        if "plane_step_px" in info:
            timings["plane_step_px"] = info["plane_step_px"]
        depth = self._snap(left_s, tiles.blend(depths), scaled, T, timings)
        return _restore(depth, camera), _restore(tiles.blend(confs), camera), None, timings

    def _learned(self, left, views, camera):
        H, W, V = self.engine_height, self.engine_width, self.engine_views
        if len(views) < V:
            raise ValueError(f"the engine takes {V} source views, got {len(views)} (right image + extra views)")
        views = views[:V]
        cam = camera.scaled(W, H)

        def tensor(img: np.ndarray) -> np.ndarray:
            return _chw(resize_image(img, W, H))

        t0 = time.perf_counter()
        out = self.engine.infer(
            reference=tensor(left)[None],
            sources=np.stack([tensor(img) for img, _ in views])[None],
            intrinsics=cam.K.astype(np.float32)[None],
            poses=np.stack([T for _, T in views]).astype(np.float32)[None],
        )
        infer_ms = (time.perf_counter() - t0) * 1e3
        depth = np.asarray(out["depth"], np.float32).reshape(H, W)
        conf = np.asarray(out["confidence"], np.float32).reshape(H, W)
        normals = None
        if "normal" in out:
            n = np.asarray(out["normal"], np.float32).reshape(3, H, W).transpose(1, 2, 0)
            normals = _restore(np.ascontiguousarray(n), camera)
        info = {"infer_ms": infer_ms}
        depth = self._snap(resize_image(left, W, H), depth, cam, views[0][1], info)
        return _restore(depth, camera), _restore(conf, camera), normals, info

    def _snap(self, image: np.ndarray, depth: np.ndarray, camera: PinholeCamera, T_right_left: np.ndarray,
              info: dict[str, float]) -> np.ndarray:
        """`edge_snap` where the depth was computed (the sweep's or the engine's pixels), before restoring. A
        refinement engine gets it twice: on the sweep before its prior is filled, and on its own output."""
        if not self.config.edge_snap:
            return depth
        t0 = time.perf_counter()
        depth = snap_depth_edges(image, depth, camera.fx * float(np.linalg.norm(np.asarray(T_right_left)[:3, 3])))
        info["edge_snap_ms"] = info.get("edge_snap_ms", 0.0) + (time.perf_counter() - t0) * 1e3
        return depth
