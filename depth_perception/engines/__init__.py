"""Engine contract, load_engine(), backends torch | onnxruntime | tensorrt, export and build.

    engine = load_engine("engines/mono_default.onnx")           # backend="auto", device="auto"
    out = engine.infer(image=rgb01[None].transpose(0, 3, 1, 2))  # {"depth": ..., "disparity": ...}

`auto` picks the fastest backend present: tensorrt (a plan, or a `<name>.fp16.plan` beside the .onnx) >
onnxruntime-cuda > torch-cuda > onnxruntime-cpu > torch-cpu, and logs its choice. On the CPU the order of the
last two follows the latencies `bench engine --record` measured into the sidecar (`cpu_latency_ms`): an engine
whose graph ONNX Runtime runs slowly (NLSPN's GridSample is single-threaded there) is run by PyTorch. Backends
import lazily, so `import depth_perception.engines` costs neither torch nor onnxruntime.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
from pathlib import Path

from ..kinds import BACKENDS  # the one list of backends
from .spec import FORMAT, Engine, EngineError, EngineSpec, read_sidecar, sha256_file, sidecar_path, verify_sha256

__all__ = [
    "FORMAT", "Engine", "EngineError", "EngineSpec", "BACKENDS", "available_backends", "default_engine_path",
    "gpu_available", "load_engine", "plans_beside", "read_sidecar", "sha256_file", "sidecar_path", "verify_sha256",
]

log = logging.getLogger(__name__)

_ALIASES = {"ort": "onnxruntime", "trt": "tensorrt", "pytorch": "torch"}
PLAN_SUFFIXES = (".plan", ".engine")


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules, or a broken parent package
        return False


def missing_runtime() -> str | None:
    """Why no learned engine can run here (neither onnxruntime nor torch imports), or None when one can."""
    if _importable("onnxruntime") or _importable("torch"):
        return None
    return ("no engine runtime is installed: neither onnxruntime nor torch imports (in a ROS install: rosdep "
            "install --from-paths src brings onnxruntime through the python3-onnxruntime-pip key; or pip install "
            "onnxruntime)")


def available_backends() -> list[str]:
    """Backends whose runtime imports here (tensorrt also needs CUDA)."""
    from .backends.trt_backend import tensorrt_available

    out = []
    if tensorrt_available():
        out.append("tensorrt")
    if _importable("onnxruntime"):
        out.append("onnxruntime")
    if _importable("torch"):
        out.append("torch")
    return out


def default_engine_path(kind: str, variant: str = "default") -> Path | None:
    """The shipped `<kind>_<variant>.onnx` (with its .json; variant "default", or "cpu" for the stereo engine sized
    for a CPU): $DEPTH_PERCEPTION_ENGINES, the source tree's engines/, then share/depth_perception/engines of a
    ROS install; None when none is there."""
    name = f"{kind}_{variant}.onnx"
    candidates = []
    if os.environ.get("DEPTH_PERCEPTION_ENGINES"):
        candidates.append(Path(os.environ["DEPTH_PERCEPTION_ENGINES"]) / name)
    candidates.append(Path(__file__).resolve().parents[2] / "engines" / name)
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("depth_perception")) / "engines" / name)
    except Exception:  # no ament index outside a ROS install, or the package is not installed
        pass
    return next((c for c in candidates if c.is_file() and c.with_suffix(".json").is_file()), None)


_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device(device: str) -> None:
    """ValueError naming the value unless it is auto, cpu, or cuda[:N] with a CUDA device N present here."""
    if not isinstance(device, str) or not _DEVICE.match(device):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if not device.startswith("cuda"):
        return
    from .backends.ort_backend import has_cuda

    count = _torch_cuda_count()
    if count == 0 and not has_cuda():
        raise ValueError(f"device {device!r}: no CUDA device on this machine (use 'auto' or 'cpu')")
    index = int(device.partition(":")[2] or 0)
    if count and index >= count:
        raise ValueError(f"device {device!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")


def _torch_cuda_count() -> int:
    if not _torch_cuda():  # no torch, or no CUDA driver (then torch is not even imported)
        return 0
    import torch

    return int(torch.cuda.device_count())


def _resolve_device(device: str) -> str:
    check_device(device)
    return device


def runnable_plan(onnx_path: Path) -> Path | None:
    """The first plan beside `onnx_path` (see plans_beside) whose runtime, TensorRT or TensorRT-RTX, runs here."""
    from .backends.trt_backend import runtime_available

    for plan in plans_beside(onnx_path):
        runtime = str((_sidecar_json(plan).get("tensorrt") or {}).get("runtime", "tensorrt"))
        if runtime_available(runtime)[0]:
            return plan
    return None


def plans_beside(onnx_path: Path) -> list[Path]:
    """TensorRT plans built from `<name>.onnx`: `<name>.<precision>.plan` (own sidecar `<name>.<precision>.json`),
    fp16 first, then int8, fp32 and any other `<name>.*.plan|.engine`."""
    onnx_path = Path(onnx_path)
    found = [p for s in PLAN_SUFFIXES for p in onnx_path.parent.glob(f"{onnx_path.stem}.*{s}")
             if p.with_suffix(".json").exists() and _built_from(p, onnx_path)]
    rank = {"fp16": 0, "int8": 1, "fp32": 2}
    return sorted(found, key=lambda p: (rank.get(p.stem.rsplit(".", 1)[-1], 3), p.name))


def _sidecar_json(path: Path) -> dict:
    try:
        data = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _built_from(plan: Path, onnx_path: Path) -> bool:
    """False for a plan built from another ONNX file, or from an earlier export of this one (a retrained model):
    its sidecar's source_sha256 is not this ONNX's sha256."""
    built = _sidecar_json(plan).get("tensorrt") or {}
    source, current = built.get("source_sha256"), _sidecar_json(onnx_path).get("sha256")
    return source is None or current is None or source == current


def _torch_cuda() -> bool:
    from .backends.torch_backend import cuda_available

    return cuda_available()


def gpu_available() -> bool:
    """Whether a learned engine could run on a GPU here: ONNX Runtime's CUDA provider, or torch with CUDA."""
    from .backends.ort_backend import has_cuda

    return has_cuda() or (_importable("torch") and _torch_cuda())


CPU_PREFERENCE_MARGIN = 1.1  # torch must have been measured this much faster than onnxruntime to be preferred


def recorded_cpu_choice(spec: EngineSpec) -> tuple[str, str] | None:
    """("torch" | "onnxruntime", why) from the sidecar's `cpu_latency_ms` record, or None when there is none."""
    rec = spec.get("cpu_latency_ms")
    if not isinstance(rec, dict):
        return None
    try:
        ort_ms, torch_ms = float(rec["onnxruntime"]), float(rec["torch"])
    except (KeyError, TypeError, ValueError):
        return None
    why = (f"recorded CPU p50: onnxruntime {ort_ms:.1f} ms, torch {torch_ms:.1f} ms"
           f" ({rec.get('threads', '?')} threads, {rec.get('machine', 'unknown machine')})")
    return ("torch" if torch_ms * CPU_PREFERENCE_MARGIN < ort_ms else "onnxruntime"), why


def _auto_backend(path: Path, spec: EngineSpec, device: str) -> tuple[str, str, Path]:
    """(backend, device, model file) by speed: tensorrt > ort-cuda > torch-cuda > ort-cpu > torch-cpu, the CPU
    pair in the order of the sidecar's recorded latencies where it has them."""
    from .backends.ort_backend import has_cuda as ort_cuda
    from .backends.torch_backend import weights_path

    if path.suffix in PLAN_SUFFIXES:
        return "tensorrt", "cuda", path
    plan = runnable_plan(path)
    has_weights = weights_path(path, spec).exists() and "architecture" in spec
    is_onnx = path.suffix == ".onnx" and _importable("onnxruntime")
    gpu_ok = device != "cpu"
    if gpu_ok and plan is not None:
        return "tensorrt", "cuda", plan
    if gpu_ok and is_onnx and ort_cuda():
        return "onnxruntime", "cuda", path
    if gpu_ok and has_weights and _importable("torch") and _torch_cuda():
        return "torch", "cuda", path
    if device.startswith("cuda"):
        raise EngineError(f"device {device!r} asked for, but no GPU backend can run {path} here")
    torch_cpu = has_weights and _importable("torch")
    choice = recorded_cpu_choice(spec) if (is_onnx and torch_cpu) else None
    if choice is not None and choice[0] == "torch":
        log.info("engine %s: torch on the CPU, measured faster than onnxruntime (%s)", path.name, choice[1])
        return "torch", "cpu", path
    if is_onnx:
        return "onnxruntime", "cpu", path
    if torch_cpu:
        return "torch", "cpu", path
    raise EngineError(f"no backend can run {path} here (available: {available_backends()})")


def load_engine(path: str | os.PathLike[str], backend: str = "auto", device: str = "auto", *,
                threads: int | None = None, fp16: bool = False, rebuild: bool = True) -> Engine:
    """Open an engine artifact (`.onnx` / `.plan` / `.engine` / `.safetensors` + `.json`) with one backend.

    backend: auto | tensorrt | onnxruntime | torch. device: auto | cpu | cuda[:N]. threads: intra-op threads
    (onnxruntime, torch CPU). fp16: half precision for the torch backend on CUDA. rebuild: rebuild a TensorRT plan
    built for another TensorRT/GPU from its source ONNX (else refuse it).
    """
    path = Path(path)
    backend = _ALIASES.get(backend, backend)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    device = _resolve_device(device)
    if path.is_dir():
        raise EngineError(f"{path} is a folder: pass the engine file (<name>.onnx), or run a training checkpoint "
                          "through `depth-perception export` first")
    if not path.exists():
        raise FileNotFoundError(f"engine not found: {path}")
    spec = read_sidecar(path)
    if backend == "auto":
        backend, device, path = _auto_backend(path, spec, device)
        if path.suffix in PLAN_SUFFIXES:
            spec = read_sidecar(path)
        log.info("engine %s: backend %s on %s", path.name, backend, device)
    elif device == "auto":
        if backend == "tensorrt":
            device = "cuda"
        elif backend == "onnxruntime":
            from .backends.ort_backend import has_cuda

            device = "cuda" if has_cuda() else "cpu"
        else:
            device = "cuda" if _torch_cuda() else "cpu"
    if backend == "tensorrt":
        return _load_plan(path, spec, rebuild)
    if backend == "onnxruntime":
        if path.suffix != ".onnx":
            raise EngineError(f"the onnxruntime backend runs .onnx files, got {path.name}")
        if not _importable("onnxruntime"):
            raise EngineError("onnxruntime is not installed here: pip install onnxruntime")
        verify_sha256(path, spec.get("sha256"), "model file")
        from .backends.ort_backend import OrtEngine

        return OrtEngine(spec, path, device, threads=threads)
    if path.suffix in PLAN_SUFFIXES:
        raise EngineError(f"the torch backend cannot run a TensorRT plan ({path.name}); use its .onnx")
    if not _importable("torch"):
        raise EngineError("torch is not installed here: the torch backend needs it")
    if path.suffix == ".onnx":
        verify_sha256(path, spec.get("sha256"), "model file")
    from .backends.torch_backend import TorchEngine

    return TorchEngine(spec, path, "cuda" if device == "cuda" else device, fp16=fp16, threads=threads)


def _load_plan(path: Path, spec: EngineSpec, rebuild: bool) -> Engine:
    """A plan for this runtime and GPU; otherwise rebuilt from its source ONNX (same options) or refused."""
    from .backends.trt_backend import TrtEngine, import_runtime, plan_mismatch, plan_runtime, runtime_available

    if path.suffix == ".onnx":
        plan = runnable_plan(path)
        if plan is None:
            if not rebuild:
                raise EngineError(f"no TensorRT plan beside {path}: build one with "
                                  f"`depth-perception build-engine {path}`")
            plan = _first_build(path)
        path, spec = plan, read_sidecar(plan)
    import_runtime(plan_runtime(spec))
    runs, why_not = runtime_available(plan_runtime(spec))
    if not runs:  # before any validity check or rebuild: nothing here could run the result
        raise EngineError(f"the tensorrt backend cannot run {path.name} ({plan_runtime(spec)}) here: {why_not}")
    why = plan_mismatch(spec, path.read_bytes() if plan_runtime(spec) == "tensorrt-rtx" else None)
    if why is not None:
        built = spec.get("tensorrt") or {}
        source = path.parent / str(built.get("source_onnx", ""))
        hint = f"`depth-perception build-engine {source if built.get('source_onnx') else 'MODEL.onnx'} --out {path}`"
        if not rebuild or not built.get("source_onnx") or not source.exists():
            raise EngineError(f"TensorRT plan {path} was {why}: plans do not move between TensorRT versions or GPUs; "
                              f"rebuild it with {hint}")
        from .build import BuildOptions, build_plan

        log.warning("TensorRT plan %s was %s: rebuilding it from %s", path, why, source)
        build_plan(source, path, BuildOptions.from_sidecar(built))
        spec = read_sidecar(path)
    return TrtEngine(spec, path)


def _first_build(onnx_path: Path) -> Path:
    """A plan built beside the ONNX model on first use (as Isaac ROS does): fp16 with TensorRT (minutes on a
    Jetson), else a TensorRT-RTX engine of the model as it is (precision comes from the ONNX)."""
    from .backends.trt_backend import runtime_available
    from .build import BuildOptions, build_plan, default_plan_path

    runtime = next((r for r in ("tensorrt", "tensorrt-rtx") if runtime_available(r)[0]), None)
    if runtime is None:
        raise EngineError(f"no TensorRT or TensorRT-RTX runtime can run here, and no plan is beside {onnx_path}")
    rtx = runtime == "tensorrt-rtx"
    options = BuildOptions(precision="fp32" if rtx else "fp16", runtime=runtime)
    plan = default_plan_path(onnx_path, options.precision, runtime)
    log.warning("no plan beside %s: building %s with %s now (once)", onnx_path, plan.name, runtime)
    try:
        return build_plan(onnx_path, plan, options)
    except PermissionError as exc:
        raise EngineError(f"cannot write a TensorRT plan beside {onnx_path} ({exc}); build one elsewhere with "
                          f"`depth-perception build-engine {onnx_path} --out DIR/{plan.name}`") from exc
