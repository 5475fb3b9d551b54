"""Build a TensorRT plan from an engine's ONNX model, with TensorRT (the JetPack / enterprise builds) or TensorRT-RTX.

- `tensorrt` (TensorRT 10 Python API, a GPU needed): fp32 / fp16 / int8 builder flags, DLA, timing cache.
- `tensorrt-rtx` (`pip install tensorrt-rtx-cu12`, module `tensorrt_rtx`): ahead-of-time on any machine, no GPU
  needed, for the compute capabilities it is told (RTX-class GPUs: SM75, SM80, SM86, SM89, SM120, SM121); the
  engine is finished just in time on the GPU that runs it, with a runtime cache beside it. It is strongly typed:
  precision comes from the ONNX (`export --fp16` writes an fp16 model), not from builder flags.

Both share the parsing (an ONNX the parser rejects names the node), the sidecar and the rebuild logic. The plan's
sidecar copies the ONNX sidecar (which is never written) and adds `tensorrt` {runtime, version, gpu or
compute_capabilities, precision, source_onnx, source_sha256, built_at, build_s}: a plan only runs on what it was
built for, and load_engine rebuilds it from `source_onnx` when that differs.
"""
from __future__ import annotations

import datetime
import importlib.util
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..utils import atomic_path, write_json
from .backends.trt_backend import RTX_COMPUTE_CAPABILITIES, RUNTIMES, import_runtime, machine_signature
from .spec import EngineError, EngineSpec, read_sidecar, sha256_file, verify_sha256

log = logging.getLogger(__name__)
PRECISIONS = ("fp32", "fp16", "int8")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def default_runtime() -> str | None:
    """`tensorrt` where it imports, else `tensorrt-rtx` where it imports, else None."""
    if importlib.util.find_spec("tensorrt") is not None:
        return "tensorrt"
    if importlib.util.find_spec("tensorrt_rtx") is not None:
        return "tensorrt-rtx"
    return None


@dataclass
class BuildOptions:
    precision: str = "fp16"
    workspace_mb: int = 1024
    dla_core: int | None = None
    calib_dir: str | None = None
    calib_limit: int = 64
    max_batch: int = 4  # upper end of the optimization profile of a dynamic-batch model
    timing_cache: str | None = None  # default: <plan folder>/.trt_timing.cache
    runtime: str = "tensorrt"
    compute_capabilities: tuple[str, ...] = ()  # tensorrt-rtx targets; empty: TensorRT-RTX's own default

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, got {self.runtime!r}")
        self.compute_capabilities = tuple(c.upper() for c in self.compute_capabilities)
        bad = [c for c in self.compute_capabilities if c not in RTX_COMPUTE_CAPABILITIES]
        if bad:
            raise ValueError(f"compute capabilities {bad} are not TensorRT-RTX targets {RTX_COMPUTE_CAPABILITIES}")
        if self.runtime == "tensorrt-rtx":
            if self.precision == "int8" or self.dla_core is not None:
                raise ValueError("TensorRT-RTX is strongly typed and has no DLA: int8 and --dla-core are TensorRT "
                                 "(JetPack) options; for fp16 build the fp16 ONNX from `export --fp16`")
            return
        if self.compute_capabilities:
            raise ValueError("compute capabilities are a TensorRT-RTX option (--runtime tensorrt-rtx)")
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
        if built.get("runtime") == "tensorrt-rtx":
            targets = [c for c in built.get("compute_capabilities") or () if c != "default"]
            return cls(precision=built.get("precision", "fp32"), runtime="tensorrt-rtx",
                       compute_capabilities=tuple(targets))
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

    class Calibrator(trt.IInt8EntropyCalibrator2):
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


def default_plan_path(onnx_path: str | Path, precision: str, runtime: str = "tensorrt") -> Path:
    """`<name>.<precision>.plan` (TensorRT) or `<name>.rtx.plan` (TensorRT-RTX: its precision is the ONNX's, so an
    fp16 export `<name>.fp16.onnx` gives `<name>.fp16.rtx.plan`) beside the ONNX; each with its own sidecar."""
    onnx_path = Path(onnx_path)
    tag = "rtx" if runtime == "tensorrt-rtx" else precision
    return onnx_path.with_name(f"{onnx_path.stem}.{tag}.plan")


def _collecting_logger(trt: Any) -> Any:
    """A logger that prints warnings as TensorRT's own does and keeps the errors, for one-line EngineErrors."""

    class Collecting(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                self.errors.append(" ".join(str(msg).split()))
            if severity <= trt.ILogger.Severity.WARNING:
                log.warning("%s: %s", trt.__name__, msg)

    return Collecting()


def parse_onnx(trt: Any, onnx_path: Path) -> tuple[Any, Any, Any, Any]:
    """(logger, builder, network, parser) of the ONNX file; EngineError naming each node the parser rejects."""
    logger = _collecting_logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10 and TensorRT-RTX
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(_parser_error(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"{trt.__name__}'s ONNX parser rejected {onnx_path}: {errors}")
    return logger, builder, network, parser


def _parser_error(err: Any) -> str:
    try:
        where = f"node {err.node()} '{err.node_name()}' ({err.node_operator()})" if err.node() >= 0 else "the graph"
        return f"{where}: {err.desc()}"
    except AttributeError:  # older bindings without the node accessors
        return str(err)


def build_plan(onnx_path: str | Path, plan_path: str | Path | None = None, options: BuildOptions | None = None
               ) -> Path:
    """Parse the ONNX model, build, serialize; writes the plan and its sidecar atomically. Returns the plan path."""
    options = options or BuildOptions()
    onnx_path = Path(onnx_path)
    plan_path = Path(plan_path) if plan_path else default_plan_path(onnx_path, options.precision, options.runtime)
    if plan_path.suffix not in (".plan", ".engine"):
        raise ValueError(f"the plan must end in .plan or .engine, got {plan_path}")
    if plan_path.with_suffix(".json").resolve() == onnx_path.with_suffix(".json").resolve():
        raise ValueError(f"plan {plan_path.name} would share its sidecar with {onnx_path.name}: name it "
                         f"{default_plan_path(onnx_path, options.precision, options.runtime).name}")
    spec = read_sidecar(onnx_path)
    verify_sha256(onnx_path, spec.get("sha256"), "model file")
    t0 = time.perf_counter()
    if options.runtime == "tensorrt-rtx":
        serialized, block = _build_rtx(onnx_path, spec, options)
    else:
        serialized, block = _build_tensorrt(onnx_path, spec, plan_path, options)
    block["build_s"] = round(time.perf_counter() - t0, 3)
    _write_plan(plan_path, serialized, spec, onnx_path, block)
    return plan_path


def _build_rtx(onnx_path: Path, spec: EngineSpec, options: BuildOptions) -> tuple[bytes, dict[str, Any]]:
    """Ahead of time, no GPU needed: the engine holds code for each target compute capability."""
    trt = import_runtime("tensorrt-rtx")
    logger, builder, network, _ = parse_onnx(trt, onnx_path)
    config = builder.create_builder_config()
    _add_profile(builder, network, config, options.max_batch)
    targets = options.compute_capabilities
    if targets:
        config.num_compute_capabilities = len(targets)
        for i, name in enumerate(targets):
            if not config.set_compute_capability(getattr(trt.ComputeCapability, name), i):
                raise EngineError(f"TensorRT-RTX {trt.__version__} refused compute capability {name}")
    log.info("building a TensorRT-RTX engine from %s for %s", onnx_path, ", ".join(targets) or "its default targets")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        why = "; ".join(logger.errors[-3:]) or "see its log above"
        raise EngineError(f"TensorRT-RTX failed to build an engine from {onnx_path}: {why}")
    return bytes(serialized), {"runtime": "tensorrt-rtx", "version": str(trt.__version__),
                               "compute_capabilities": list(targets) or ["default"],
                               "precision": str(spec.get("precision", "fp32"))}


def _build_tensorrt(onnx_path: Path, spec: EngineSpec, plan_path: Path, options: BuildOptions
                    ) -> tuple[bytes, dict[str, Any]]:
    import torch

    trt = import_runtime("tensorrt")
    if not torch.cuda.is_available():
        raise EngineError("building a TensorRT plan needs a CUDA GPU; none is visible here")
    logger, builder, network, _ = parse_onnx(trt, onnx_path)
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
        why = "; ".join(logger.errors[-3:]) or "see the TensorRT log above"
        raise EngineError(f"TensorRT failed to build a plan from {onnx_path}: {why}")
    with atomic_path(cache_path) as tmp:
        tmp.write_bytes(bytes(config.get_timing_cache().serialize()))
    return bytes(serialized), {
        "runtime": "tensorrt", **machine_signature(), "precision": options.precision,
        "workspace_mb": options.workspace_mb, "dla_core": options.dla_core,
        "calib_dir": str(options.calib_dir) if options.calib_dir else None}


def _write_plan(plan_path: Path, serialized: bytes, spec: EngineSpec, onnx_path: Path, block: dict[str, Any]) -> None:
    """The plan and its own sidecar (the ONNX's, with `tensorrt` added), each written atomically."""
    sidecar = dict(spec)
    sidecar.pop("weights_file", None)
    sidecar.pop("weights_sha256", None)
    sidecar.pop("cpu_latency_ms", None)  # measured for the ONNX, not for this plan
    sidecar["model_file"] = plan_path.name
    sidecar["tensorrt"] = {
        **block,
        "source_onnx": onnx_path.name if onnx_path.parent.resolve() == plan_path.parent.resolve()
        else str(onnx_path.resolve()),
        "source_sha256": spec.get("sha256"),
        "built_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    with atomic_path(plan_path) as tmp:
        tmp.write_bytes(serialized)
        sidecar["sha256"] = sha256_file(tmp)
        write_json(plan_path.with_suffix(".json"), sidecar)
    log.info("wrote %s (%s %s)", plan_path, block["runtime"], block.get("version"))
