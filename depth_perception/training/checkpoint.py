"""Checkpoints without pickle: weights and optimizer tensors in safetensors, everything else in JSON beside it.

`<dir>/checkpoint.safetensors` holds `model.<name>` and `optim.<param index>.<key>` tensors;
`<dir>/checkpoint.json` holds the architecture (name + config, for models.registry), the step, the
optimizer's param groups and whatever metadata the trainer adds.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..utils import atomic_path, write_json

WEIGHTS = "checkpoint.safetensors"
META = "checkpoint.json"


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for idx, entry in state["state"].items():
        for key, value in entry.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"optim.{idx}.{key}"] = t.detach().cpu().contiguous()
    return tensors, state["param_groups"]


def save_checkpoint(
    out_dir: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    step: int,
    meta: dict[str, Any],
) -> Path:
    """Write weights (+ optimizer state) and metadata atomically; returns the weights' path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    groups: list[dict[str, Any]] = []
    if optimizer is not None:
        opt_tensors, groups = _optimizer_tensors(optimizer)
        tensors.update(opt_tensors)
    with atomic_path(out_dir / WEIGHTS) as tmp:
        save_file(tensors, str(tmp))
    write_json(out_dir / META, {**meta, "step": int(step), "param_groups": groups})
    return out_dir / WEIGHTS


def read_meta(path: str | Path) -> dict[str, Any]:
    """The JSON beside a checkpoint (path may be the folder, the .safetensors or the .json)."""
    path = Path(path)
    meta_path = path / META if path.is_dir() else path.with_suffix(".json")
    if not meta_path.exists():
        raise FileNotFoundError(f"checkpoint metadata not found: {meta_path}")
    try:
        return json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"checkpoint metadata {meta_path} is not valid JSON: {exc}") from exc


def _read_model_tensors(path: str | Path, what: str) -> tuple[Path, dict[str, torch.Tensor]]:
    """The model tensors of a checkpoint (folder or .safetensors; `model.` prefix dropped) or of bare weights."""
    path = Path(path)
    weights = path / WEIGHTS if path.is_dir() else path
    if not weights.exists():
        raise FileNotFoundError(f"{what} not found: {weights}")
    try:
        tensors = load_file(str(weights))
    except Exception as exc:  # safetensors raises its own error types for truncated or corrupt files
        raise ValueError(f"{what} {weights} unreadable: {exc}") from exc
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    return weights, state or tensors  # a bare weights file, as the engine export writes


def load_weights(path: str | Path, model: torch.nn.Module, strict: bool = True) -> None:
    """Load the model weights of a checkpoint (folder or .safetensors) into `model`."""
    _, state = _read_model_tensors(path, "checkpoint weights")
    model.load_state_dict(state, strict=strict)


def warm_start(path: str | Path, model: torch.nn.Module, skip: Sequence[str] = ()) -> list[str]:
    """Copy into `model` every tensor of a checkpoint (folder or .safetensors) whose name and shape match, except
    names starting with one of `skip`; the rest keep their initialisation. Returns the names left as initialised
    (a different head or stem, say, or a skipped one)."""
    weights, source = _read_model_tensors(path, "warm-start weights")
    own = model.state_dict()
    taken = {k: v for k, v in source.items()
             if k in own and tuple(own[k].shape) == tuple(v.shape) and not k.startswith(tuple(skip))}
    if not taken:
        raise ValueError(f"warm-start weights {weights} share no tensor (name and shape) with this model")
    model.load_state_dict({**own, **taken})
    return sorted(k for k in own if k not in taken)


def load_checkpoint(
    out_dir: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None
) -> dict[str, Any]:
    """Restore model and optimizer state from `out_dir`; returns the metadata (with `step`)."""
    out_dir = Path(out_dir)
    meta = read_meta(out_dir)
    load_weights(out_dir, model)
    if optimizer is not None and meta.get("param_groups"):
        tensors = load_file(str(out_dir / WEIGHTS))
        state: dict[int, dict[str, Any]] = {}
        for name, value in tensors.items():
            if not name.startswith("optim."):
                continue
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return meta
