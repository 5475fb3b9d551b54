"""The ONNX Runtime backend: providers TensorRT, CUDA, CPU in that order where present."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..spec import Engine, EngineError, EngineSpec

PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def available_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


def has_cuda() -> bool:
    return "CUDAExecutionProvider" in available_providers()


def trt_cache_dir() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = root / "depth_perception" / "ort_tensorrt"
    path.mkdir(parents=True, exist_ok=True)
    return path


def choose_providers(device: str) -> list[str]:
    present = available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    chosen = [p for p in PREFERRED if p in present]
    if device.startswith("cuda") and not any(p in chosen for p in PREFERRED[:2]):
        raise EngineError(f"device {device!r} asked for, but onnxruntime has no CUDA/TensorRT provider here "
                          f"(present: {present}); install onnxruntime-gpu or use device='cpu'")
    return chosen


class OrtEngine(Engine):
    backend = "onnxruntime"

    def __init__(self, spec: EngineSpec, path: Path, device: str = "cpu", threads: int | None = None) -> None:
        import onnxruntime as ort

        providers = choose_providers(device)
        super().__init__(spec, path, "cuda" if providers[0] != "CPUExecutionProvider" else "cpu")
        opts = ort.SessionOptions()
        threads = threads if threads is not None else int(os.environ.get("DEPTH_PERCEPTION_ORT_THREADS", "0"))
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # ONNX Runtime's worker threads busy-wait after each run by default; beside a node's own work on the same
        # cores (publishing a frame, receiving the next) that spinning took the CPU the node needed.
        # DEPTH_PERCEPTION_ORT_SPINNING=1 keeps ONNX Runtime's default.
        opts.add_session_config_entry("session.intra_op.allow_spinning",
                                      "1" if os.environ.get("DEPTH_PERCEPTION_ORT_SPINNING", "0") == "1" else "0")
        gpu = {"device_id": device.split(":", 1)[1]} if device.startswith("cuda:") else {}  # cuda:N -> GPU N
        provider_options: list[tuple[str, dict[str, str]] | str] = []
        for p in providers:
            if p == "TensorrtExecutionProvider":
                # reuse engines across runs (TensorRT builds are slow) in a user cache: share/ may be read-only
                cache = str(trt_cache_dir())
                provider_options.append((p, {"trt_engine_cache_enable": "True", "trt_engine_cache_path": cache,
                                             "trt_timing_cache_enable": "True", **gpu}))
            elif p == "CUDAExecutionProvider":
                provider_options.append((p, gpu))
            else:
                provider_options.append(p)
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=provider_options)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/InvalidProtobuf types
            raise EngineError(f"onnxruntime cannot load {path} (truncated or corrupt?): {_one_line(exc)}") from None
        self.providers = self.session.get_providers()
        graph_inputs = [i.name for i in self.session.get_inputs()]
        if graph_inputs != spec.input_names:
            raise EngineError(f"{path}: graph inputs {graph_inputs} do not match the sidecar's {spec.input_names}")
        for graph, entry in zip(self.session.get_inputs(), spec["inputs"], strict=True):
            if not _shapes_agree(graph.shape, entry["shape"]):
                raise EngineError(f"{path}: input {graph.name!r} is {list(graph.shape)} in the ONNX graph but "
                                  f"{list(entry['shape'])} in the sidecar")
        self._outputs = spec.output_names

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        feed = dict(zip(self.spec.input_names, arrays, strict=True))
        try:
            return self.session.run(self._outputs, feed)
        except Exception as exc:  # onnxruntime's Fail / InvalidArgument / RuntimeException: several lines each
            raise EngineError(f"onnxruntime failed to run {self.path.name}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:500]


def _shapes_agree(graph: list, sidecar: list) -> bool:
    """Equal rank, and equal wherever both name a fixed size (symbolic or -1 dimensions agree with anything)."""
    if len(graph) != len(sidecar):
        return False
    return all(not isinstance(g, int) or not isinstance(d, int) or d < 0 or g == d
               for g, d in zip(graph, sidecar, strict=True))

