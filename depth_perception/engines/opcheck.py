"""Check an ONNX model against the operators TensorRT's ONNX parser supports (tensorrt_onnx_ops.txt).

TensorRT plans are built on the vehicle from our ONNX files, so an op the parser lacks must fail at export, here,
not at start-up on a Jetson.
"""
from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

OPS_FILE = Path(__file__).with_name("tensorrt_onnx_ops.txt")
MAX_OPSET = 17  # the parser's (TensorRT 8.5, JetPack 5) highest supported opset


class UnsupportedOpError(ValueError):
    """The model uses ONNX operators TensorRT's parser does not support; `ops` names them."""

    def __init__(self, ops: list[str], model: str) -> None:
        self.ops = ops
        super().__init__(f"{model} uses ONNX operator(s) TensorRT's parser does not support: {', '.join(ops)} "
                         f"(supported list: {OPS_FILE.name}); rewrite that part of the network with supported ops")


@lru_cache(maxsize=4)
def supported_ops(path: str | Path = OPS_FILE) -> frozenset[str]:
    """The first token of each non-comment, non-blank line."""
    ops = set()
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            ops.add(line.split()[0])
    return frozenset(ops)


def _graph_ops(graph: Any, local: set[tuple[str, str]]) -> Iterable[tuple[str, str]]:
    import onnx

    for node in graph.node:
        if (node.domain, node.op_type) not in local:
            yield node.domain, node.op_type
        for attr in node.attribute:  # If / Loop / Scan bodies
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graph_ops(attr.g, local)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _graph_ops(g, local)


def used_ops(model: Any) -> set[tuple[str, str]]:
    """(domain, op_type) of every node, inside subgraphs and local functions too; calls to local functions are
    replaced by their bodies."""
    local = {(f.domain, f.name) for f in model.functions}
    ops = set(_graph_ops(model.graph, local))
    for f in model.functions:
        for node in f.node:
            if (node.domain, node.op_type) not in local:
                ops.add((node.domain, node.op_type))
    return ops


def unsupported_ops(model: Any, ops_file: str | Path = OPS_FILE) -> list[str]:
    """Operator names the parser lacks, sorted; ops outside the default ONNX domain are always unsupported."""
    allowed = supported_ops(ops_file)
    bad = set()
    for domain, op in used_ops(model):
        if domain not in ("", "ai.onnx"):
            bad.add(f"{domain}::{op}")
        elif op not in allowed:
            bad.add(op)
    return sorted(bad)


def opset_of(model: Any) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def check_model(model_or_path: Any, ops_file: str | Path = OPS_FILE, max_opset: int = MAX_OPSET) -> None:
    """Raise UnsupportedOpError naming the offending ops, or ValueError for an opset above `max_opset`."""
    import onnx

    name = "the model"
    if isinstance(model_or_path, (str, Path)):
        name = str(model_or_path)
        model_or_path = onnx.load(str(model_or_path))
    bad = unsupported_ops(model_or_path, ops_file)
    if bad:
        raise UnsupportedOpError(bad, name)
    opset = opset_of(model_or_path)
    if opset > max_opset:
        raise ValueError(f"{name} has ONNX opset {opset}; TensorRT's parser here supports up to {max_opset}")
