"""The torch backend: rebuild the architecture named in the sidecar and load its safetensors weights (no pickle)."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..spec import Engine, EngineError, EngineSpec, verify_sha256


def weights_path(model_path: Path, spec: EngineSpec) -> Path:
    """The safetensors file: the artifact itself, `<name>.safetensors` beside an .onnx (so a renamed artifact
    keeps working), else the `weights_file` its sidecar names."""
    model_path = Path(model_path)
    if model_path.suffix == ".safetensors":
        return model_path
    beside = model_path.with_suffix(".safetensors")
    if beside.exists() or not spec.get("weights_file"):
        return beside
    return model_path.parent / str(spec["weights_file"])


# Device nodes that a CUDA driver makes on Linux: desktop and server GPUs (nvidiactl, nvidia0), Jetson (nvhost-ctrl-gpu,
# nvmap), WSL 2 (dxg).
CUDA_DEVICE_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/nvhost-ctrl-gpu", "/dev/nvmap", "/dev/dxg")


def cuda_driver_absent() -> bool:
    """True where CUDA certainly cannot run: Linux with none of the driver's device nodes. Spares importing torch
    (3 s on a small CPU, at every node and CLI start) only to hear that there is no GPU."""
    return sys.platform.startswith("linux") and not any(os.path.exists(p) for p in CUDA_DEVICE_NODES)


def cuda_available() -> bool:
    if cuda_driver_absent():
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


class TorchEngine(Engine):
    backend = "torch"

    def __init__(self, spec: EngineSpec, path: Path, device: str = "cpu", fp16: bool = False,
                 threads: int | None = None) -> None:
        import torch
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from ...models.registry import build_model

        super().__init__(spec, path, device)
        arch = spec.get("architecture")
        if not isinstance(arch, dict) or "name" not in arch:
            raise EngineError(f"sidecar of {path} has no architecture {{name, config}}: the torch backend cannot "
                              "rebuild the network")
        weights = weights_path(Path(path), spec)
        if not weights.exists():
            raise EngineError(f"torch backend: weights {weights} not found beside {path} (export writes "
                              "<name>.safetensors; use the onnxruntime backend otherwise)")
        # export writes the weights' own hash (weights_sha256); a weights-only artifact has it as its sha256
        expected = spec.get("weights_sha256") or (spec.get("sha256") if weights == Path(path) else None)
        verify_sha256(weights, expected, "weights file")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise EngineError(f"device {device!r} asked for, but torch has no CUDA here")
        if fp16 and not device.startswith("cuda"):
            raise ValueError("fp16 needs a CUDA device for the torch backend")
        if threads:
            torch.set_num_threads(int(threads))
        try:
            state = load_file(str(weights))
        except (SafetensorError, OSError, ValueError) as exc:
            raise EngineError(f"weights file {weights} is unreadable (truncated or corrupt?): {exc}") from exc
        model = build_model(arch["name"], **arch.get("config", {}))
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise EngineError(f"weights {weights} do not fit architecture {arch['name']!r}: {exc}") from exc
        self.model: Any = model.eval().to(device)
        self.fp16 = bool(fp16)
        if self.fp16:
            self.model.half()
        self._torch = torch

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        torch = self._torch
        dtype = torch.float16 if self.fp16 else None
        with torch.inference_mode():
            tensors = [torch.from_numpy(a).to(self.device, dtype=dtype if a.dtype == np.float32 else None)
                       for a in arrays]
            outs = self.model(*tensors)
            if torch.is_tensor(outs):
                outs = (outs,)
            return [o.float().cpu().numpy() for o in outs]
