"""Architecture registry: an engine sidecar names an architecture and its config; this builds the module.

Each model module registers a builder with `@register_model("name")`. A builder takes keyword config
(JSON-serialisable values only) and returns an `nn.Module` whose `forward` takes the engine's inputs in
the sidecar's order and returns its outputs as a tuple in the sidecar's order (the deploy form).
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

_BUILDERS: dict[str, Callable[..., Any]] = {}
# Modules that register architectures; imported on first lookup so the registry fills itself.
_MODEL_MODULES = ("mono", "stereo", "stereo_refine", "nlspn", "tiny")


def register_model(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(builder: Callable[..., Any]) -> Callable[..., Any]:
        if name in _BUILDERS and _BUILDERS[name] is not builder:
            raise ValueError(f"architecture {name!r} is registered twice")
        _BUILDERS[name] = builder
        return builder

    return decorate


def _load_all() -> None:
    for mod in _MODEL_MODULES:
        try:
            importlib.import_module(f"depth_perception.models.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name != f"depth_perception.models.{mod}":
                raise


def build_model(name: str, **config: Any) -> Any:
    """Build a registered architecture; unknown names raise ValueError listing the known ones."""
    if name not in _BUILDERS:
        _load_all()
    if name not in _BUILDERS:
        raise ValueError(f"unknown architecture {name!r}; known: {sorted(_BUILDERS)}")
    return _BUILDERS[name](**config)


def known_models() -> list[str]:
    _load_all()
    return sorted(_BUILDERS)
