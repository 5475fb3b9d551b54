"""Build a TensorRT plan from an engine's ONNX model (TensorRT 10 Python API): fp32 / fp16 / int8, DLA, timing cache.

The plan's sidecar copies the ONNX sidecar and adds `tensorrt` {version, gpu, precision, workspace_mb, dla_core,
source_onnx, source_sha256}: a plan only runs on the TensorRT version and GPU it was built for, and load_engine
rebuilds it from `source_onnx` when those differ.
"""
from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..utils import atomic_path, write_json
from .spec import EngineError, EngineSpec, read_sidecar, sha256_file, verify_sha256

log = logging.getLogger(__name__)
PRECISIONS = ("fp32", "fp16", "int8")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass
class BuildOptions:
    precision: str = "fp16"
    workspace_mb: int = 1024
    dla_core: int | None = None
    calib_dir: str | None = None
    calib_limit: int = 64
    max_batch: int = 4  # upper end of the optimization profile of a dynamic-batch model
    timing_cache: str | None = None  # default: <plan folder>/.trt_timing.cache

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.workspace_mb < 16:
            raise ValueError(f"workspace_mb must be >= 16, got {self.workspace_mb}")
        if self.dla_core is not None and self.dla_core < 0:
            raise ValueError(f"dla_core must be >= 0, got {self.dla_core}")
        if self.precision == "int8" and not self.calib_dir:
            raise ValueError("int8 needs calibration data: pass calib_dir (--calib-dir DIR)")
        if self.calib_limit < 1:
            raise ValueError(f"calib_limit must be >= 1, got {self.calib_limit}")

    @classmethod
    def from_sidecar(cls, built: dict[str, Any]) -> BuildOptions:
        """The options a plan was built with (its sidecar's `tensorrt` block), to rebuild it the same way."""
        calib = built.get("calib_dir")
        return cls(precision=built.get("precision", "fp16"), workspace_mb=int(built.get("workspace_mb", 1024)),
                   dla_core=built.get("dla_core"), calib_dir=calib if calib and Path(calib).is_dir() else None)


def _read_image(path: Path, height: int, width: int) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"calibration image {path} is unreadable")
    rgb = cv2.cvtColor(cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    return (rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]


def calibration_batches(spec: EngineSpec, calib_dir: str | Path, limit: int = 64) -> Iterator[dict[str, np.ndarray]]:
    """Engine inputs for int8 calibration, one batch per file of `calib_dir`, sorted by name.

    `*.npz` files hold arrays named after the engine inputs (every input, at the engine's shapes); image files
    (png/jpg) fill the engine's image input (`image` or `reference`, resized), other inputs taking neutral values.
    """
    from .spec import Engine

    calib_dir = Path(calib_dir)
    if not calib_dir.is_dir():
        raise FileNotFoundError(f"calibration folder not found: {calib_dir}")
    files = sorted(p for p in calib_dir.iterdir() if p.suffix.lower() in (".npz", *IMAGE_SUFFIXES))
    if not files:
        raise ValueError(f"calibration folder {calib_dir} has no .npz or image files")
    checker = Engine(spec, calib_dir)
    defaults = checker.example_inputs()
    h, w = spec.image_size
    image_input = next((n for n in ("image", "reference") if n in spec.input_names), None)
    for path in files[:limit]:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as data:
                batch = {k: data[k].astype(np.float32) for k in data.files}
        else:
            if image_input is None:
                raise ValueError(f"{path.name}: the engine has no image input; give .npz files for its inputs "
                                 f"{spec.input_names}")
            image = _read_image(path, h, w)
            batch = {**defaults, image_input: image}
            if "sources" in batch:  # the same image as its own source: a plausible, if textureless, cost volume
                batch["sources"] = np.broadcast_to(image[:, None], batch["sources"].shape).copy()
        checker.check_inputs(batch)  # names, shapes and dtypes as the engine wants them
        yield batch


def _make_calibrator(trt: Any, spec: EngineSpec, options: BuildOptions, cache_path: Path) -> Any:
    import torch

    class Calibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self._batches = calibration_batches(spec, options.calib_dir or "", options.calib_limit)
            self._device: dict[str, Any] = {}

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: list[str]) -> list[int] | None:
            batch = next(self._batches, None)
            if batch is None:
                return None
            self._device = {n: torch.from_numpy(np.ascontiguousarray(batch[n])).cuda() for n in names}
            return [int(self._device[n].data_ptr()) for n in names]

        def read_calibration_cache(self) -> bytes | None:
            return cache_path.read_bytes() if cache_path.exists() else None

        def write_calibration_cache(self, cache: Any) -> None:
            with atomic_path(cache_path) as tmp:
                tmp.write_bytes(bytes(cache))

    return Calibrator()


def _add_profile(builder: Any, network: Any, config: Any, max_batch: int) -> None:
    """A dynamic batch axis needs an optimization profile: batch 1 is the optimum, `max_batch` the limit."""
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    dynamic = [t for t in inputs if any(d < 0 for d in tuple(t.shape))]
    if not dynamic:
        return
    profile = builder.create_optimization_profile()
    for t in dynamic:
        shape = tuple(t.shape)
        lo = tuple(1 if d < 0 else d for d in shape)
        hi = tuple(max_batch if d < 0 else d for d in shape)
        profile.set_shape(t.name, lo, lo, hi)
    config.add_optimization_profile(profile)


def default_plan_path(onnx_path: str | Path, precision: str) -> Path:
    """`<name>.<precision>.plan` beside `<name>.onnx`: its sidecar `<name>.<precision>.json` keeps the ONNX's own."""
    onnx_path = Path(onnx_path)
    return onnx_path.with_name(f"{onnx_path.stem}.{precision}.plan")


def build_plan(onnx_path: str | Path, plan_path: str | Path | None = None, options: BuildOptions | None = None
               ) -> Path:
    """Parse the ONNX model, build, serialize; writes the plan and its sidecar atomically. Returns the plan path."""
    import torch

    from .backends.trt_backend import import_tensorrt, machine_signature

    options = options or BuildOptions()
    onnx_path = Path(onnx_path)
    plan_path = Path(plan_path) if plan_path else default_plan_path(onnx_path, options.precision)
    if plan_path.suffix not in (".plan", ".engine"):
        raise ValueError(f"the plan must end in .plan or .engine, got {plan_path}")
    if plan_path.with_suffix(".json").resolve() == onnx_path.with_suffix(".json").resolve():
        raise ValueError(f"plan {plan_path.name} would share its sidecar with {onnx_path.name}: name it "
                         f"{default_plan_path(onnx_path, options.precision).name}")
    spec = read_sidecar(onnx_path)
    verify_sha256(onnx_path, spec.get("sha256"), "model file")
    trt = import_tensorrt()
    if not torch.cuda.is_available():
        raise EngineError("building a TensorRT plan needs a CUDA GPU; none is visible here")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes(), str(onnx_path.parent)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"TensorRT's ONNX parser rejected {onnx_path}: {errors}")
    config = builder.create_builder_config()
    _add_profile(builder, network, config, options.max_batch)
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace_mb) << 20)
    if options.precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)  # int8 layers fall back to fp16, not fp32
    if options.precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = _make_calibrator(trt, spec, options, plan_path.with_suffix(".calib.cache"))
    if options.dla_core is not None:
        if builder.num_DLA_cores <= options.dla_core:
            raise EngineError(f"dla_core {options.dla_core} asked for, this device has {builder.num_DLA_cores} "
                              "DLA cores")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(options.dla_core)
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    cache_path = Path(options.timing_cache) if options.timing_cache else plan_path.parent / ".trt_timing.cache"
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.exists() else b"")
    config.set_timing_cache(cache, ignore_mismatch=True)  # a stale cache only costs build time
    log.info("building TensorRT %s plan from %s", options.precision, onnx_path)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(f"TensorRT failed to build a plan from {onnx_path} (see the TensorRT log above)")
    with atomic_path(cache_path) as tmp:
        tmp.write_bytes(bytes(config.get_timing_cache().serialize()))
    sidecar = dict(spec)
    sidecar.pop("weights_file", None)
    sidecar.pop("weights_sha256", None)
    sidecar["model_file"] = plan_path.name
    sidecar["tensorrt"] = {
        **machine_signature(), "precision": options.precision, "workspace_mb": options.workspace_mb,
        "dla_core": options.dla_core, "calib_dir": str(options.calib_dir) if options.calib_dir else None,
        "source_onnx": onnx_path.name if onnx_path.parent.resolve() == plan_path.parent.resolve()
        else str(onnx_path.resolve()),
        "source_sha256": spec.get("sha256"),
        "built_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    with atomic_path(plan_path) as tmp:
        tmp.write_bytes(bytes(serialized))
        sidecar["sha256"] = sha256_file(tmp)
        write_json(plan_path.with_suffix(".json"), sidecar)
    log.info("wrote %s (%s, TensorRT %s on %s)", plan_path, options.precision, sidecar["tensorrt"]["version"],
             sidecar["tensorrt"]["gpu"])
    return plan_path
