"""The TensorRT backend: a serialized plan run with execute_async_v3 on torch CUDA buffers, for two runtimes.

- `tensorrt` (TensorRT 10 Python API, JetPack / enterprise builds): a plan is tied to the TensorRT version and the
  GPU it was built for.
- `tensorrt-rtx` (module `tensorrt_rtx`): an engine built ahead of time for a set of compute capabilities, finished
  just in time on an RTX-class GPU (SM75, SM80, SM86, SM89, SM120, SM121; not data-centre parts such as the H200's
  SM90). Its just-in-time kernels go to a runtime cache file beside the engine (`<plan>.runtime_cache`), so the
  second start is fast.

Imported only where TensorRT is wanted; `runtime_available()` says whether a runtime can run here. A plan's
sidecar records what it was built for; a mismatch rebuilds it from its source ONNX or is refused with a hint.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..spec import Engine, EngineError, EngineSpec, verify_sha256

log = logging.getLogger(__name__)


# TensorRT-RTX's targets (tensorrt_rtx.ComputeCapability names): Turing, Ampere, Ada, Blackwell RTX-class GPUs
RTX_COMPUTE_CAPABILITIES = ("SM75", "SM80", "SM86", "SM89", "SM120", "SM121")
RUNTIMES = ("tensorrt", "tensorrt-rtx")


def import_tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise EngineError("TensorRT is not installed here (import tensorrt failed): use an .onnx engine with the "
                          "onnxruntime backend, or install TensorRT 10 (JetPack / pip tensorrt)") from exc
    return trt


def import_runtime(runtime: str) -> Any:
    """The Python module of `tensorrt` or `tensorrt-rtx`; EngineError saying how to install it."""
    if runtime == "tensorrt-rtx":
        try:
            import tensorrt_rtx as trt
        except ImportError as exc:
            raise EngineError("TensorRT-RTX is not installed here (import tensorrt_rtx failed): "
                              "pip install tensorrt-rtx-cu12") from exc
        return trt
    return import_tensorrt()


def plan_runtime(spec: EngineSpec) -> str:
    """The runtime a plan was built with (plans from before TensorRT-RTX support are `tensorrt`)."""
    return str((spec.get("tensorrt") or {}).get("runtime", "tensorrt"))


def gpu_compute_capability() -> str | None:
    """'SM86' for the first CUDA GPU, None without one."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability(0)
    return f"SM{major}{minor}"


def runtime_available(runtime: str) -> tuple[bool, str]:
    """(can run here, why not): the module imports and a GPU it supports is visible."""
    module = "tensorrt_rtx" if runtime == "tensorrt-rtx" else "tensorrt"
    import importlib.util

    if importlib.util.find_spec(module) is None:
        return False, f"{module} is not installed"
    cc = gpu_compute_capability()
    if cc is None:
        return False, "no CUDA GPU is visible"
    if runtime == "tensorrt-rtx" and cc not in RTX_COMPUTE_CAPABILITIES:
        return False, f"this GPU is {cc}; TensorRT-RTX runs on {', '.join(RTX_COMPUTE_CAPABILITIES)} (RTX-class GPUs)"
    return True, ""


def tensorrt_available() -> bool:
    return any(runtime_available(r)[0] for r in RUNTIMES)


def machine_signature(runtime: str = "tensorrt") -> dict[str, str]:
    """What a plan is bound to: the runtime's version and the GPU (its name; for TensorRT-RTX its SM)."""
    import torch

    trt = import_runtime(runtime)
    if runtime == "tensorrt-rtx":
        return {"version": str(trt.__version__), "gpu": gpu_compute_capability() or "none"}
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {"version": str(trt.__version__), "gpu": gpu}


def plan_mismatch(spec: EngineSpec, data: bytes | None = None) -> str | None:
    """None when the plan was built for this runtime and GPU, else a sentence saying what differs. A TensorRT-RTX
    engine is checked with the runtime's own validity check where its bytes are given."""
    built = spec.get("tensorrt") or {}
    runtime = plan_runtime(spec)
    here = machine_signature(runtime)
    if runtime == "tensorrt-rtx":
        diffs = [] if built.get("version") == here["version"] else [
            f"TensorRT-RTX {built.get('version')!r} (here {here['version']!r})"]
        targets = built.get("compute_capabilities") or ["default"]
        if "default" not in targets and here["gpu"] not in targets:
            diffs.append(f"compute capabilities {targets} (this GPU is {here['gpu']})")
        if not diffs and data is not None:
            trt = import_runtime(runtime)
            validity, why = trt.Runtime(trt.Logger(trt.Logger.ERROR)).get_engine_validity(data)
            if validity == trt.EngineValidity.INVALID:
                diffs.append(f"another environment (TensorRT-RTX validity check: diagnostics {why})")
        return "built for " + ", ".join(diffs) if diffs else None
    diffs = [f"{key} {built.get(key)!r} (here {here[key]!r})" for key in ("version", "gpu")
             if built.get(key) != here[key]]
    return "built for " + ", ".join(diffs) if diffs else None


class TrtEngine(Engine):
    backend = "tensorrt"

    def __init__(self, spec: EngineSpec, path: Path, device: str = "cuda") -> None:
        import torch

        self.runtime_name = plan_runtime(spec)
        trt = import_runtime(self.runtime_name)
        ok, why = runtime_available(self.runtime_name)
        if not ok:
            raise EngineError(f"the tensorrt backend cannot run {Path(path).name} ({self.runtime_name}) here: {why}")
        if device not in ("cuda", "auto", "cuda:0"):
            raise EngineError(f"the tensorrt backend runs on the plan's GPU, cuda:0; device {device!r} is not "
                              "supported (select the GPU with CUDA_VISIBLE_DEVICES)")
        super().__init__(spec, path, "cuda")
        verify_sha256(path, spec.get("sha256"), "TensorRT plan")
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        engine = self._runtime.deserialize_cuda_engine(Path(path).read_bytes())
        if engine is None:
            raise EngineError(f"{self.runtime_name} could not deserialize {path} (corrupt, or built by another "
                              "version)")
        self.engine = engine
        self._runtime_cache = None
        self.runtime_cache_path = Path(path).with_suffix(".runtime_cache")
        if self.runtime_name == "tensorrt-rtx":
            self.context = self._rtx_context(engine)
        else:
            self.context = engine.create_execution_context()
        self._torch = torch
        self._stream = torch.cuda.Stream()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        if sorted(inputs) != sorted(spec.input_names):
            raise EngineError(f"{path}: plan inputs {inputs} do not match the sidecar's {spec.input_names}")
        self._outputs: dict[str, Any] = {}
        self._output_dtypes = {n: _torch_dtype(torch, np.dtype(trt.nptype(engine.get_tensor_dtype(n))))
                               for n in spec.output_names}
        self._input_dtypes = {n: _torch_dtype(torch, np.dtype(trt.nptype(engine.get_tensor_dtype(n))))
                              for n in inputs}

    def _rtx_context(self, engine: Any) -> Any:
        """An execution context whose just-in-time kernels are read from, and saved to, the runtime cache."""
        config = engine.create_runtime_config()
        cache = config.create_runtime_cache()
        if self.runtime_cache_path.is_file() and not cache.deserialize(self.runtime_cache_path.read_bytes()):
            log.info("runtime cache %s is from another GPU or version: starting a new one", self.runtime_cache_path)
        config.set_runtime_cache(cache)
        self._runtime_cache = cache
        return engine.create_execution_context(config)

    def save_runtime_cache(self) -> Path | None:
        """Write the TensorRT-RTX runtime cache beside the engine (atomically); None for TensorRT plans."""
        if self._runtime_cache is None:
            return None
        from ...utils import atomic_path

        try:
            with atomic_path(self.runtime_cache_path) as tmp:
                tmp.write_bytes(bytes(self._runtime_cache.serialize()))
        except OSError as exc:  # a read-only install: the cache only saves start-up time
            log.warning("cannot write the runtime cache %s: %s", self.runtime_cache_path, exc)
            return None
        return self.runtime_cache_path

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        first = not getattr(self, "_ran", False)
        outs = self._execute(arrays)
        if first:
            self._ran = True
            self.save_runtime_cache()  # the kernels compiled for this GPU on the first run
        return outs

    def _execute(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        torch = self._torch
        keep = []
        with torch.cuda.stream(self._stream):
            for name, arr in zip(self.spec.input_names, arrays, strict=True):
                t = torch.from_numpy(arr).to("cuda", dtype=self._input_dtypes[name], non_blocking=True).contiguous()
                keep.append(t)  # the buffer must outlive the launch
                self.context.set_input_shape(name, tuple(t.shape))
                self.context.set_tensor_address(name, t.data_ptr())
            for name in self.spec.output_names:
                # a dynamic batch gives output shapes only once the input shapes are set
                shape = tuple(self.context.get_tensor_shape(name))
                if name not in self._outputs or tuple(self._outputs[name].shape) != shape:
                    self._outputs[name] = torch.empty(shape, dtype=self._output_dtypes[name], device="cuda")
                self.context.set_tensor_address(name, self._outputs[name].data_ptr())
            if not self.context.execute_async_v3(self._stream.cuda_stream):
                raise RuntimeError(f"{self.runtime_name} execution of {self.path} failed")
            outs = [self._outputs[n].float().cpu() for n in self.spec.output_names]
        self._stream.synchronize()
        return [o.numpy() for o in outs]


def _torch_dtype(torch: Any, dtype: np.dtype) -> Any:
    return {np.dtype("float32"): torch.float32, np.dtype("float16"): torch.float16, np.dtype("int32"): torch.int32,
            np.dtype("int64"): torch.int64, np.dtype("bool"): torch.bool, np.dtype("int8"): torch.int8}[dtype]
