"""What every depth pipeline returns, and the one colormap used for pictures and `depth/colorized`."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..geometry.camera import PinholeCamera

log = logging.getLogger(__name__)


@dataclass
class DepthResult:
    """Dense depth in the camera's pixels: float32 metres, NaN where unknown (REP 118)."""

    depth: np.ndarray
    confidence: np.ndarray
    camera: PinholeCamera
    timings_ms: dict[str, float] = field(default_factory=dict)
    normals: np.ndarray | None = None
    info: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.depth.shape != self.camera.shape or self.confidence.shape != self.camera.shape:
            raise ValueError(
                f"depth {self.depth.shape} and confidence {self.confidence.shape} "
                f"must match the camera {self.camera.shape}"
            )


def _turbo_lut() -> np.ndarray:
    # Google's Turbo colormap as a polynomial fit (Mikhailov 2019), sampled once into a 256-entry table.
    x = np.linspace(0.0, 1.0, 256)
    r = 0.13572138 + x * (4.61539260 + x * (-42.66032258 + x * (132.13108234 + x * (-152.94239396 + x * 59.28637943))))
    g = 0.09140261 + x * (2.19418839 + x * (4.84296658 + x * (-14.18503333 + x * (4.27729857 + x * 2.82956604))))
    b = 0.10667330 + x * (12.64194608 + x * (-60.58204836 + x * (110.36276771 + x * (-89.90310912 + x * 27.34824973))))
    return (np.clip(np.stack([r, g, b], 1), 0, 1) * 255).astype(np.uint8)


TURBO = _turbo_lut()


def colorize_depth(
    depth: np.ndarray, min_depth: float = 1.0, max_depth: float = 80.0, inverse: bool = True
) -> np.ndarray:
    """Depth (H, W) metres -> rgb8 (H, W, 3) with a fixed range, so colours mean the same depth in every frame.

    Near is red, far is blue (inverse depth spreads the colours over the near range, where detail is);
    NaN and non-positive depth are black.
    """
    d = np.asarray(depth, dtype=np.float32)
    valid = np.isfinite(d) & (d > 0)
    dc = np.clip(np.where(valid, d, max_depth), min_depth, max_depth)
    if inverse:
        t = (1.0 / dc - 1.0 / max_depth) / (1.0 / min_depth - 1.0 / max_depth)
    else:
        t = 1.0 - (dc - min_depth) / (max_depth - min_depth)
    rgb = TURBO[np.clip((t * 255).astype(np.int32), 0, 255)]
    rgb[~valid] = 0
    return rgb


class CheckpointEngine:
    """A training checkpoint folder (checkpoint.json + .safetensors) run in torch, with the Engine interface.

    Lets `eval` and `infer` score a run before it is exported (any registered architecture); artifacts go
    through load_engine.
    """

    backend = "torch-checkpoint"

    def __init__(self, folder: Path, device: str = "auto") -> None:
        import torch

        from ..models.registry import build_model
        from ..training.checkpoint import load_weights, read_meta

        arch = read_meta(folder)["model"]
        self.model = build_model(arch["name"], **arch["config"]).eval()
        load_weights(folder, self.model)
        self.device = torch.device("cuda" if device == "auto" and torch.cuda.is_available()
                                   else ("cpu" if device == "auto" else device))
        self.model.to(self.device)
        self.spec = {"kind": self.model.kind, "architecture": arch, **self.model.io_spec()}

    def infer(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        names = [i["name"] for i in self.spec["inputs"]]
        with torch.no_grad():
            outs = self.model(*(torch.from_numpy(np.ascontiguousarray(inputs[n])).to(self.device) for n in names))
        return {o["name"]: t.cpu().numpy() for o, t in zip(self.spec["outputs"], outs, strict=True)}


def check_engine_and_range(engine: str, min_depth: float, max_depth: float, choices: str) -> None:
    """The checks every pipeline config makes: an engine named, and 0 < min_depth < max_depth."""
    if not engine:
        raise ValueError(f"engine must be {choices}, got an empty string")
    if not min_depth > 0:
        raise ValueError(f"min_depth must be > 0, got {min_depth}")
    if not max_depth > min_depth:
        raise ValueError(f"max_depth must be > min_depth ({min_depth}), got {max_depth}")


def resolve_engine_path(engine: str, kind: str, shipped: Callable[[], Path | None]) -> tuple[Path | None, str]:
    """A pipeline's `engine` setting as (path, why it fell back): path None for 'classical', and for 'auto' when
    nothing ships or when no runtime for a learned engine can be imported. In that last case `why` says so: a node
    of a ROS install without onnxruntime publishes classical depth with a warning instead of failing to load
    again and again."""
    if engine == "classical":
        return None, ""
    if engine == "auto":
        path = shipped()
        if path is not None:
            from ..engines import missing_runtime

            why = missing_runtime()
            if why is not None:
                log.warning("%s engine 'auto': %s; using the classical engine", kind, why)
                return None, f"engine 'auto' fell back to the classical engine: {why}"
        return path, ""
    path = Path(engine)
    if not path.exists():
        raise FileNotFoundError(f"{kind} engine not found: {path}")
    return path, ""


def open_engine(path: Path, kind: str, backend: str, device: str) -> Any:
    """An engine artifact through load_engine, or a training checkpoint folder in torch; checks its kind."""
    if path.is_dir() and (path / "checkpoint.json").exists():
        engine: Any = CheckpointEngine(path, device)
    else:
        from ..engines import load_engine

        engine = load_engine(str(path), backend=backend, device=device)
    if engine.spec.get("kind") != kind:
        raise ValueError(f"engine {path} is a {engine.spec.get('kind')!r} engine, not {kind!r}")
    return engine
