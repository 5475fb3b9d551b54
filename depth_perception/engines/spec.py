"""The engine contract: the sidecar (EngineSpec), the Engine base class with input checks, and file integrity."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..kinds import KIND_NAMES as KINDS

FORMAT = "depth_perception.engine/1"

MODEL_SUFFIXES = (".onnx", ".plan", ".engine", ".safetensors")
REQUIRED_KEYS = ("format", "kind", "inputs", "outputs")


class EngineError(ValueError):
    """An engine artifact that cannot be used: missing, corrupt, tampered with, or built for another machine."""


def sidecar_path(model_path: str | Path) -> Path:
    """`<name>.json` beside `<name>.onnx|.plan|.engine|.safetensors`."""
    return Path(model_path).with_suffix(".json")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class EngineSpec(dict):
    """The parsed sidecar: a plain dict (JSON keys of docs/CONTRACTS.md) with a few typed views."""

    @property
    def kind(self) -> str:
        return str(self["kind"])

    @property
    def input_names(self) -> list[str]:
        return [i["name"] for i in self["inputs"]]

    @property
    def output_names(self) -> list[str]:
        return [o["name"] for o in self["outputs"]]

    def input_shape(self, name: str) -> tuple[int, ...]:
        for i in self["inputs"]:
            if i["name"] == name:
                return tuple(int(d) for d in i["shape"])
        raise KeyError(f"engine has no input {name!r}; inputs: {self.input_names}")

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) the engine runs at: the last two dims of its first input."""
        shape = self["inputs"][0]["shape"]
        return int(shape[-2]), int(shape[-1])

    @property
    def depth_range(self) -> tuple[float, float]:
        lo, hi = self.get("depth_range") or [0.0, float("inf")]
        return float(lo), float(hi)


# The inputs each kind's pipeline feeds, with their rank: images are (1, C, H, W) with a fixed H and W.
KIND_INPUTS = {"mono": {"image": 4}, "completion": {"image": 4, "sparse_depth": 4},
               "stereo": {"reference": 4, "sources": 5, "intrinsics": 3, "poses": 4}}


def _check_shapes(data: dict[str, Any], path: Path) -> None:
    for key in ("inputs", "outputs"):
        for entry in data[key]:
            shape = entry["shape"]
            if not isinstance(shape, list) or not all(
                    (isinstance(d, int) and not isinstance(d, bool) and (d >= 1 or d == -1)) or isinstance(d, str)
                    for d in shape):
                raise EngineError(f"engine sidecar {path}: {key[:-1]} {entry['name']!r} has shape {shape!r}; "
                                  "expected a list of sizes (int >= 1, -1 or a symbolic name)")
    shapes = {e["name"]: e["shape"] for e in data["inputs"]}
    for name, rank in KIND_INPUTS.get(data["kind"], {}).items():
        if name not in shapes:
            raise EngineError(f"engine sidecar {path}: a {data['kind']} engine needs an input {name!r}; "
                              f"inputs: {sorted(shapes)}")
        shape = shapes[name]
        if len(shape) != rank or not all(isinstance(d, int) and d >= 1 for d in shape[-2:]):
            raise EngineError(f"engine sidecar {path}: input {name!r} has shape {shape}; a {data['kind']} engine "
                              f"takes {rank} dimensions ending in a fixed size")


def read_sidecar(model_path: str | Path) -> EngineSpec:
    """Parse and check the sidecar of `model_path`; EngineError naming the file and the problem."""
    path = sidecar_path(model_path)
    if not path.exists():
        raise EngineError(f"engine sidecar not found: {path} (every engine file needs its <name>.json beside it)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EngineError(f"engine sidecar {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EngineError(f"engine sidecar {path} must hold a JSON object, got {type(data).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise EngineError(f"engine sidecar {path} lacks keys {missing}")
    if data["format"] != FORMAT:
        raise EngineError(f"engine sidecar {path}: format {data['format']!r} is not {FORMAT!r}")
    if data["kind"] not in KINDS:
        raise EngineError(f"engine sidecar {path}: kind {data['kind']!r} is not one of {KINDS}")
    for key in ("inputs", "outputs"):
        entries = data[key]
        if not isinstance(entries, list) or not entries or not all(
            isinstance(e, dict) and "name" in e and "shape" in e for e in entries
        ):
            raise EngineError(f"engine sidecar {path}: {key} must be a non-empty list of {{name, shape, dtype}}")
    _check_shapes(data, path)
    return EngineSpec(data)


def update_sidecar(model_path: str | Path, key: str, value: Any) -> Path:
    """Set one top-level `key` of the sidecar of `model_path` (atomically); returns the sidecar's path.

    The sidecar is checked first, so nothing is written into something that is not an engine's; the model's
    checksum is untouched, so the engine still loads.
    """
    from ..utils import atomic_path

    read_sidecar(model_path)
    path = sidecar_path(model_path)
    data = json.loads(path.read_text())
    data[key] = value
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def record_metrics(model_path: str | Path, name: str, figures: Mapping[str, Any]) -> Path:
    """Store evaluation `figures` under metrics[name] in the sidecar of `model_path` (atomically); returns it."""
    metrics = read_sidecar(model_path).get("metrics")
    metrics = dict(metrics) if isinstance(metrics, dict) else {}
    metrics[name] = dict(figures)
    return update_sidecar(model_path, "metrics", metrics)


def verify_sha256(file: str | Path, expected: str | None, what: str = "model file") -> None:
    """Refuse a file whose sha256 disagrees with the sidecar: it was replaced, truncated or corrupted."""
    file = Path(file)
    if not file.exists():
        raise EngineError(f"{what} not found: {file}")
    if not expected:
        raise EngineError(f"sidecar of {file} has no sha256 for the {what}; re-export the engine")
    actual = sha256_file(file)
    if actual != expected:
        raise EngineError(
            f"{what} {file} has sha256 {actual[:16]}..., its sidecar says {str(expected)[:16]}...: the file was "
            "changed, truncated or belongs to another export; re-export it or restore the matching pair"
        )


class Engine:
    """One network behind one call: `infer(**inputs) -> {output name: array}`; inputs checked against the spec.

    Subclasses implement `_run(arrays in spec input order) -> arrays in spec output order`.
    """

    backend = "none"

    def __init__(self, spec: EngineSpec, path: Path, device: str = "cpu") -> None:
        self.spec = spec
        self.path = Path(path)
        self.device = device

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path.name}, kind={self.spec.kind}, backend={self.backend}, {self.device})"

    def check_inputs(self, inputs: Mapping[str, Any]) -> list[np.ndarray]:
        """Inputs in the spec's order; ValueError naming the input, what was expected and what came."""
        names = self.spec.input_names
        unknown = sorted(set(inputs) - set(names))
        if unknown:
            raise ValueError(f"unknown engine input(s) {unknown}; expected {names}")
        arrays = []
        for entry in self.spec["inputs"]:
            name = entry["name"]
            if name not in inputs:
                raise ValueError(f"missing engine input {name!r}: expected {entry.get('dtype', 'float32')} "
                                 f"{list(entry['shape'])}")
            arr = inputs[name]
            if not isinstance(arr, np.ndarray):
                raise ValueError(f"engine input {name!r}: expected a numpy array, got {type(arr).__name__}")
            want_dtype = np.dtype(entry.get("dtype", "float32"))
            if arr.dtype != want_dtype:
                raise ValueError(f"engine input {name!r}: expected dtype {want_dtype}, got {arr.dtype}")
            want = [int(d) if isinstance(d, (int, float)) else None for d in entry["shape"]]
            # a dynamic axis (string name or -1 in the sidecar) accepts any size
            ok = arr.ndim == len(want) and all(
                w is None or w < 0 or w == s for w, s in zip(want, arr.shape, strict=False))
            if not ok:
                raise ValueError(f"engine input {name!r}: expected shape {list(entry['shape'])}, got "
                                 f"{list(arr.shape)}")
            arrays.append(np.ascontiguousarray(arr))
        return arrays

    def infer(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        arrays = self.check_inputs(inputs)
        outputs = self._run(arrays)
        return {name: np.asarray(out) for name, out in zip(self.spec.output_names, outputs, strict=True)}

    def example_inputs(self, seed: int = 0) -> dict[str, np.ndarray]:
        """Random inputs of the right shapes (images in [0, 1], plausible stereo geometry), for warm-up and bench."""
        rng = np.random.default_rng(seed)
        out: dict[str, np.ndarray] = {}
        for entry in self.spec["inputs"]:
            shape = [int(d) if isinstance(d, (int, float)) and int(d) > 0 else 1 for d in entry["shape"]]
            name = entry["name"]
            dtype = np.dtype(entry.get("dtype", "float32"))
            if name == "intrinsics":
                h, w = self.spec.image_size
                k = np.array([[0.6 * w, 0, w / 2 - 0.5], [0, 0.6 * w, h / 2 - 0.5], [0, 0, 1]], dtype)
                out[name] = np.broadcast_to(k, shape).astype(dtype)
            elif name == "poses":
                t = np.eye(4, dtype=dtype)
                t[0, 3] = -0.54
                out[name] = np.broadcast_to(t, shape).astype(dtype)
            elif name == "sparse_depth":
                depth = rng.uniform(2.0, 20.0, shape) * (rng.random(shape) < 0.05)
                out[name] = depth.astype(dtype)
            elif name == "prior_depth" and "sparse_depth" in out:  # the in-fill of that sparse depth
                from ..geometry.infill import ipbasic_prior

                sparse = out["sparse_depth"].reshape(out["sparse_depth"].shape[-2:])
                out[name] = ipbasic_prior(sparse).reshape(shape).astype(dtype)
            else:
                out[name] = rng.random(shape).astype(dtype)
        return out

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError
