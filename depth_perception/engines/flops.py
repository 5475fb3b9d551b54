"""Parameter count and FLOPs per frame of a deploy module (torch.utils.flop_counter: a multiply-add counts as 2)."""
from __future__ import annotations

from typing import Any


def parameter_count(module: Any) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def flops_per_frame(module: Any, inputs: tuple[Any, ...] | None = None) -> int:
    """FLOPs of one forward on the module's example inputs (batch 1). Counts the ops FlopCounterMode knows
    (convolutions, matmuls, attention); elementwise ops are not counted, so this is a lower bound."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    inputs = inputs if inputs is not None else module.example_inputs()
    module = module.eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        module(*inputs)
    return int(counter.get_total_flops())


def architecture_figures(spec: dict[str, Any]) -> dict[str, Any]:
    """{params, gflops} of the architecture a sidecar names (weights not needed); empty where it cannot be built."""
    arch = spec.get("architecture")
    if not isinstance(arch, dict) or "name" not in arch:
        return {}
    from ..models.registry import build_model

    module = build_model(arch["name"], **arch.get("config", {}))
    return {"params": parameter_count(module), "gflops": flops_per_frame(module) / 1e9}
