"""The fp16 variant of an exported engine: fp16 weights and activations, fp32 inputs and outputs.

TensorRT-RTX is strongly typed (no fp16 builder flag): an fp16 engine is built from an fp16 ONNX. The conversion
is ONNX Runtime's own (`onnxruntime.transformers.float16`, with its list of ops kept in fp32, GridSample among
them); the inputs and outputs stay fp32 so the pipelines feed both variants alike. The parity with the fp32
model is measured in ONNX Runtime on the engine's example inputs (random images: the worst case, real images
agree better) and recorded in the fp16 sidecar; the export fails when the depth output's median relative error
exceeds the tolerance. The fp32 model and its sidecar are not touched.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..utils import atomic_path, write_json
from .spec import Engine, EngineError, read_sidecar, sha256_file, verify_sha256

DEFAULT_TOLERANCE = 0.02  # median |fp16 - fp32| / |fp32| of the depth output


def default_fp16_path(onnx_path: str | Path) -> Path:
    onnx_path = Path(onnx_path)
    return onnx_path.with_name(f"{onnx_path.stem}.fp16.onnx")


def _session(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # the fp16 graph logs constant-folding notes that are not for users
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def fp16_parity(fp32_path: Path, fp16_path: Path, inputs: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per output: median and 99th-percentile relative error, and the largest absolute error."""
    ref, half = _session(fp32_path), _session(fp16_path)
    names = [o.name for o in ref.get_outputs()]
    out: dict[str, dict[str, float]] = {}
    for name, a, b in zip(names, ref.run(names, inputs), half.run(names, inputs), strict=True):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        rel = np.abs(a - b) / np.maximum(np.abs(a), 1e-3)
        out[name] = {"median_rel": float(np.median(rel)), "p99_rel": float(np.percentile(rel, 99)),
                     "max_abs": float(np.max(np.abs(a - b)))}
    return out


def export_fp16(onnx_path: str | Path, out_path: str | Path | None = None,
                tolerance: float = DEFAULT_TOLERANCE) -> Path:
    """Write `<name>.fp16.onnx` and its sidecar beside (or at `out_path`); returns the path. EngineError when the
    parity misses `tolerance` (nothing is written then)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    onnx_path = Path(onnx_path)
    out = Path(out_path) if out_path else default_fp16_path(onnx_path)
    if out.suffix != ".onnx":
        raise ValueError(f"the fp16 model must end in .onnx, got {out}")
    if out.resolve() == onnx_path.resolve():
        raise ValueError(f"the fp16 model would replace its source {onnx_path}")
    spec = read_sidecar(onnx_path)
    verify_sha256(onnx_path, spec.get("sha256"), "model file")
    if spec.get("precision", "fp32") != "fp32":
        raise EngineError(f"{onnx_path} is already {spec.get('precision')}")
    model = convert_float_to_float16(onnx.load(str(onnx_path)), keep_io_types=True)
    with atomic_path(out) as tmp:
        onnx.save(model, str(tmp))
        parity = fp16_parity(onnx_path, tmp, Engine(spec, onnx_path).example_inputs())
        depth = parity.get("depth", next(iter(parity.values())))
        if not depth["median_rel"] <= tolerance:
            raise EngineError(f"fp16 {onnx_path.name}: median relative depth error {depth['median_rel']:.4f} exceeds "
                              f"the tolerance {tolerance} (p99 {depth['p99_rel']:.3f})")
        sidecar = dict(spec)
        for key in ("weights_file", "weights_sha256", "cpu_latency_ms", "parity"):
            sidecar.pop(key, None)
        sidecar.update(model_file=out.name, precision="fp16", sha256=sha256_file(tmp),
                       fp16={"source_onnx": onnx_path.name, "source_sha256": spec.get("sha256"),
                             "tolerance_median_rel": tolerance, "parity_vs_fp32": parity,
                             "inputs_outputs": "float32"})
        write_json(out.with_suffix(".json"), sidecar)
    return out


__all__ = ["DEFAULT_TOLERANCE", "default_fp16_path", "export_fp16", "fp16_parity"]
