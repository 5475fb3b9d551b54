"""The one registry of engine kinds and runtime backends: what every layer that lists them reads.

A kind names its node (class and console executable), its pipeline and config, its shipped default engine and
whether it has a classical engine to fall back to. Classes are named by dotted path and imported only when asked
for (`load`), so this module sits at the bottom of the layering (docs/ARCHITECTURE.md) and importing it costs
nothing; setup.py's console entry points are checked against it by a test.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Kind:
    name: str
    executable: str  # console script and launch_ros executable of the node
    node_class: str  # "module:Class"
    pipeline_class: str
    config_class: str
    classical: bool  # has a classical engine ('classical', and the fallback of 'auto' without a runtime)

    @property
    def default_engine(self) -> str:
        """File name of the shipped engine (engines/, share/depth_perception/engines/)."""
        return f"{self.name}_default.onnx"

    @property
    def node_module(self) -> str:
        return self.node_class.partition(":")[0]


KINDS: dict[str, Kind] = {
    k.name: k for k in (
        Kind("mono", "mono_depth_node", "depth_perception.nodes.mono_depth_node:MonoDepthNode",
             "depth_perception.pipelines.mono:MonoPipeline", "depth_perception.pipelines.mono:MonoPipelineConfig",
             classical=False),
        Kind("stereo", "stereo_depth_node", "depth_perception.nodes.stereo_depth_node:StereoDepthNode",
             "depth_perception.pipelines.stereo:StereoPipeline",
             "depth_perception.pipelines.stereo:StereoPipelineConfig", classical=True),
        Kind("completion", "depth_completion_node",
             "depth_perception.nodes.depth_completion_node:DepthCompletionNode",
             "depth_perception.pipelines.completion:CompletionPipeline",
             "depth_perception.pipelines.completion:CompletionPipelineConfig", classical=True),
    )
}
KIND_NAMES: tuple[str, ...] = tuple(KINDS)

# Runtime backends of `load_engine(backend=...)`, and of the nodes' `backend` parameter; `auto` picks by speed.
BACKENDS: tuple[str, ...] = ("auto", "tensorrt", "onnxruntime", "torch")


def kind(name: str) -> Kind:
    """The registry entry; ValueError naming the known kinds."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"kind must be one of {list(KINDS)}, got {name!r}") from None


def load(dotted: str) -> Any:
    """The object a "module:attribute" path names (a registry entry's class)."""
    module, _, attr = dotted.partition(":")
    return getattr(importlib.import_module(module), attr)


__all__ = ["BACKENDS", "KINDS", "KIND_NAMES", "Kind", "kind", "load"]
