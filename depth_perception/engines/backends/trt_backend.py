"""The TensorRT backend (TensorRT 10 Python API): a serialized plan run with execute_async_v3 on torch CUDA buffers.

Imported only where TensorRT is wanted; `tensorrt_available()` says whether it can run here. A plan is tied to
the TensorRT version and GPU it was built for: its sidecar records both, and a mismatch either rebuilds the plan
from the ONNX model it came from or is refused with a hint.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..spec import Engine, EngineError, EngineSpec, verify_sha256

log = logging.getLogger(__name__)


def import_tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise EngineError("TensorRT is not installed here (import tensorrt failed): use an .onnx engine with the "
                          "onnxruntime backend, or install TensorRT 10 (JetPack / pip tensorrt)") from exc
    return trt


def tensorrt_available() -> bool:
    try:
        import tensorrt  # noqa: F401
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def machine_signature() -> dict[str, str]:
    """What a plan is bound to: the TensorRT version and the GPU's name."""
    import torch

    trt = import_tensorrt()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {"version": str(trt.__version__), "gpu": gpu}


def plan_mismatch(spec: EngineSpec) -> str | None:
    """None when the plan was built for this TensorRT and GPU, else a sentence saying what differs."""
    built = spec.get("tensorrt") or {}
    here = machine_signature()
    diffs = [f"{key} {built.get(key)!r} (here {here[key]!r})" for key in ("version", "gpu")
             if built.get(key) != here[key]]
    return "built for " + ", ".join(diffs) if diffs else None


class TrtEngine(Engine):
    backend = "tensorrt"

    def __init__(self, spec: EngineSpec, path: Path, device: str = "cuda") -> None:
        import torch

        trt = import_tensorrt()
        if not torch.cuda.is_available():
            raise EngineError("the tensorrt backend needs a CUDA GPU; none is visible here")
        if device not in ("cuda", "auto", "cuda:0"):
            raise EngineError(f"the tensorrt backend runs on the plan's GPU, cuda:0; device {device!r} is not "
                              "supported (select the GPU with CUDA_VISIBLE_DEVICES)")
        super().__init__(spec, path, "cuda")
        verify_sha256(path, spec.get("sha256"), "TensorRT plan")
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        engine = self._runtime.deserialize_cuda_engine(Path(path).read_bytes())
        if engine is None:
            raise EngineError(f"TensorRT could not deserialize {path} (corrupt, or built by another TensorRT)")
        self.engine = engine
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

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
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
                raise RuntimeError(f"TensorRT execution of {self.path} failed")
            outs = [self._outputs[n].float().cpu() for n in self.spec.output_names]
        self._stream.synchronize()
        return [o.numpy() for o in outs]


def _torch_dtype(torch: Any, dtype: np.dtype) -> Any:
    return {np.dtype("float32"): torch.float32, np.dtype("float16"): torch.float16, np.dtype("int32"): torch.int32,
            np.dtype("int64"): torch.int64, np.dtype("bool"): torch.bool, np.dtype("int8"): torch.int8}[dtype]
