"""Export a deploy module (or a training checkpoint) to an engine artifact: `<name>.onnx` + `<name>.json` +
`<name>.safetensors`.

Steps: ONNX export (opset 17, static shapes unless a dynamic batch is asked for), the TensorRT operator check,
an ONNX Runtime vs PyTorch parity check on the module's example inputs, then the sidecar and the weights copy
for the torch backend. All three files are written atomically: a failed export never replaces a good artifact.
"""
from __future__ import annotations

import contextlib
import copy
import datetime
import io
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..utils import atomic_path, write_json
from .opcheck import MAX_OPSET, OPS_FILE, check_model, opset_of
from .spec import FORMAT, sha256_file

log = logging.getLogger(__name__)
# float32 graphs re-associate sums differently in ONNX Runtime; these bound what that costs on our networks
DEFAULT_ATOL = 1e-4
DEFAULT_RTOL = 1e-3


class ParityError(ValueError):
    """ONNX Runtime and PyTorch disagree on the example inputs beyond the tolerance."""


def _dynamic_axes(names: list[str]) -> dict[str, dict[int, str]]:
    return {n: {0: "batch"} for n in names}


@contextlib.contextmanager
def _quiet_loggers(*names: str) -> Any:
    """The exporters log every graph rewrite at INFO; keep an export readable."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _to_onnx(module: Any, example: tuple[Any, ...], inputs: list[str], outputs: list[str], opset: int,
             dynamic_batch: bool) -> Any:
    """An onnx.ModelProto at `opset` or lower: the dynamo exporter (at its lowest opset, 18, then converted down
    after its graph optimizer has folded shape constants), else the TorchScript exporter at `opset` directly."""
    import onnx
    import torch
    from onnx import version_converter

    kwargs: dict[str, Any] = dict(input_names=inputs, output_names=outputs)
    if dynamic_batch:
        kwargs["dynamic_axes"] = _dynamic_axes(inputs + outputs)
    errors = []
    quiet = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), _quiet_loggers("onnxscript", "onnx_ir",
                                                                                        "torch.onnx"):
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(module, example, opset_version=max(18, opset), dynamo=True, verbose=False,
                                        **kwargs)
            model = program.model_proto
            if opset_of(model) > opset:
                model = version_converter.convert_version(model, opset)
            onnx.checker.check_model(model)
            return model
        except Exception as exc:  # any failure of the first exporter means: try the second
            errors.append(f"dynamo exporter: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        try:
            buf = io.BytesIO()
            torch.onnx.export(module, example, buf, opset_version=opset, dynamo=False, **kwargs)
            model = onnx.load_from_string(buf.getvalue())
            onnx.checker.check_model(model)
            return model
        except Exception as exc:
            errors.append(f"TorchScript exporter: {type(exc).__name__}: {exc}")
    raise RuntimeError(f"ONNX export at opset {opset} failed: " + "; ".join(errors))


def parity_check(model_bytes: bytes, module: Any, example: tuple[Any, ...], input_names: list[str],
                 output_names: list[str], atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL) -> dict[str, Any]:
    """Run both on the example inputs; ParityError naming the output that differs by more than atol + rtol*|ref|."""
    import onnxruntime as ort
    import torch

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(model_bytes, sess_options=opts, providers=["CPUExecutionProvider"])
    feed = {n: t.detach().cpu().numpy() for n, t in zip(input_names, example, strict=True)}
    got = session.run(output_names, feed)
    with torch.inference_mode():
        ref = module(*example)
    ref = (ref,) if torch.is_tensor(ref) else ref
    report: dict[str, Any] = {"backend": "onnxruntime-cpu", "atol": atol, "rtol": rtol, "max_abs_diff": {}}
    failures = []
    for name, a, b in zip(output_names, got, ref, strict=True):
        b = b.detach().cpu().numpy()
        if a.shape != b.shape:
            failures.append(f"{name}: shape {list(a.shape)} vs torch {list(b.shape)}")
            continue
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
        finite = np.isfinite(b)
        report["max_abs_diff"][name] = float(diff[finite].max()) if finite.any() else 0.0
        if not np.array_equal(np.isnan(a), np.isnan(b)) or not np.allclose(a, b, atol=atol, rtol=rtol,
                                                                            equal_nan=True):
            worst = np.unravel_index(int(np.nanargmax(diff)), diff.shape)
            failures.append(f"{name}: max |onnx - torch| = {np.nanmax(diff):.3g} at {list(map(int, worst))} "
                            f"(onnx {a[worst]:.6g}, torch {b[worst]:.6g})")
    report["passed"] = not failures
    if failures:
        raise ParityError(f"ONNX Runtime disagrees with PyTorch beyond atol={atol}, rtol={rtol}: "
                          + "; ".join(failures))
    return report


def _weights(module: Any) -> dict[str, Any]:
    # clone: safetensors refuses tensors that share storage (tied weights, views)
    return {k: v.detach().cpu().clone().contiguous() for k, v in module.state_dict().items()}


def _io_entries(entries: list[dict[str, Any]], dynamic_batch: bool) -> list[dict[str, Any]]:
    out = []
    for e in entries:
        e = dict(e)
        e.setdefault("dtype", "float32")
        e.setdefault("description", "")
        if dynamic_batch:
            e["shape"] = ["batch", *list(e["shape"])[1:]]
        out.append(e)
    return out


def export_module(
    module: Any,
    out_onnx: str | Path,
    architecture_name: str,
    architecture_config: dict[str, Any],
    extra_sidecar: dict[str, Any] | None = None,
    check_parity: bool = True,
    *,
    opset: int = MAX_OPSET,
    dynamic_batch: bool = False,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    ops_file: str | Path = OPS_FILE,
) -> Path:
    """Write `out_onnx`, its `.json` sidecar and `.safetensors` weights from a deploy module; returns out_onnx.

    The module follows the deploy-module protocol (kind, io_spec(), example_inputs(), forward in the io order)
    and must be rebuildable by `models.registry.build_model(architecture_name, **architecture_config)`.
    extra_sidecar keys (training, metrics, metric, depth_range, ...) override what io_spec() says.
    """
    import onnx
    import torch
    from safetensors.torch import save_file

    out_onnx = Path(out_onnx)
    if out_onnx.suffix != ".onnx":
        raise ValueError(f"out_onnx must end in .onnx, got {out_onnx}")
    for attr in ("kind", "io_spec", "example_inputs"):
        if not hasattr(module, attr):
            raise ValueError(f"module {type(module).__name__} lacks {attr!r}: it does not follow the deploy protocol")
    module = copy.deepcopy(module).cpu().eval()  # never move or mode-switch the caller's module
    io_spec = module.io_spec()
    inputs, outputs = io_spec["inputs"], io_spec["outputs"]
    in_names, out_names = [i["name"] for i in inputs], [o["name"] for o in outputs]
    example = tuple(t.detach().cpu() for t in module.example_inputs())
    for entry, t in zip(inputs, example, strict=True):
        if list(t.shape) != [int(d) for d in entry["shape"]]:
            raise ValueError(f"example input {entry['name']!r} has shape {list(t.shape)}, io_spec says "
                             f"{entry['shape']}")

    log.info("exporting %s (%s) to %s", architecture_name, module.kind, out_onnx)
    model = _to_onnx(module, example, in_names, out_names, opset, dynamic_batch)
    check_model(model, ops_file, max_opset=opset)
    model_bytes = model.SerializeToString()
    parity = parity_check(model_bytes, module, example, in_names, out_names, atol, rtol) if check_parity else \
        {"passed": None, "skipped": True}

    sidecar: dict[str, Any] = {
        "format": FORMAT,
        "kind": module.kind,
        "model_file": out_onnx.name,
        "weights_file": out_onnx.with_suffix(".safetensors").name,
        "architecture": {"name": architecture_name, "config": dict(architecture_config)},
        "inputs": _io_entries(inputs, dynamic_batch),
        "outputs": _io_entries(outputs, dynamic_batch),
        "normalization": "images are RGB / 255 in [0, 1], NCHW float32; mean/std normalization is inside the graph",
        "onnx_opset": opset_of(model),
        "dynamic_batch": bool(dynamic_batch),
        "parity": parity,
        "exported": {"at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                     "torch": torch.__version__, "onnx": onnx.__version__},
        "training": {},
        "metrics": {},
    }
    sidecar.update({k: v for k, v in io_spec.items() if k not in ("inputs", "outputs")})
    sidecar.setdefault("depth_range", None)
    sidecar.setdefault("metric", False)
    sidecar.update(extra_sidecar or {})

    weights_out = out_onnx.with_suffix(".safetensors")
    with atomic_path(out_onnx) as tmp_onnx, atomic_path(weights_out) as tmp_weights:
        tmp_onnx.write_bytes(model_bytes)
        save_file(_weights(module), str(tmp_weights), metadata={"format": "pt", "architecture": architecture_name})
        sidecar["sha256"] = sha256_file(tmp_onnx)
        sidecar["weights_sha256"] = sha256_file(tmp_weights)
        # the sidecar lands first; the model files follow as the with-block unwinds (reverse order)
        write_json(out_onnx.with_suffix(".json"), sidecar)
    log.info("exported %s (opset %d, parity %s)", out_onnx, sidecar["onnx_opset"], parity.get("passed"))
    return out_onnx


def deploy_from_checkpoint(checkpoint: str | Path, height: int | None = None, width: int | None = None
                           ) -> tuple[Any, str, dict[str, Any], dict[str, Any]]:
    """(deploy module with the trained weights, architecture name, its config, checkpoint meta).

    Training-only parts (a `deploy_config()` without them, e.g. the mono pose net) are left out; height/width
    override the export size of the fully convolutional networks.
    """
    from ..models.registry import build_model
    from ..training.checkpoint import load_weights, read_meta

    meta = read_meta(checkpoint)
    arch = meta.get("model")
    if not isinstance(arch, dict) or "name" not in arch:
        raise ValueError(f"checkpoint {checkpoint} has no architecture (meta key 'model' {{name, config}})")
    trained = build_model(arch["name"], **arch.get("config", {}))
    load_weights(checkpoint, trained)
    config = dict(trained.deploy_config()) if hasattr(trained, "deploy_config") else dict(arch.get("config", {}))
    for key, value in (("height", height), ("width", width)):
        if value is None:
            continue
        if key not in config:
            raise ValueError(f"architecture {arch['name']!r} has no {key!r} in its config: cannot set --{key}")
        if int(value) <= 0:
            raise ValueError(f"--{key} must be > 0, got {value}")
        config[key] = int(value)
    module = build_model(arch["name"], **config)
    wanted = module.state_dict().keys()
    state = trained.state_dict()
    missing = [k for k in wanted if k not in state]
    if missing:
        raise ValueError(f"checkpoint {checkpoint} lacks weights the deploy module needs: {missing[:5]}")
    module.load_state_dict({k: state[k] for k in wanted}, strict=True)
    return module.eval(), arch["name"], config, meta


def export_checkpoint(
    checkpoint_path: str | Path,
    out_onnx: str | Path,
    height: int | None = None,
    width: int | None = None,
    dynamic_batch: bool = False,
    check_parity: bool = True,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    extra_sidecar: dict[str, Any] | None = None,
) -> Path:
    """A training checkpoint folder -> engine artifact; the sidecar's training block comes from its meta."""
    module, name, config, meta = deploy_from_checkpoint(checkpoint_path, height, width)
    training = {k: meta[k] for k in ("command", "data", "seeds", "mode", "samples", "split") if k in meta}
    training.update(step=meta.get("step"), checkpoint=str(checkpoint_path),
                    train_config=meta.get("train_config", {}))
    extra: dict[str, Any] = {"training": training, "metrics": dict(meta.get("metrics", {}))}
    if "metric" in meta:
        extra["metric"] = bool(meta["metric"])
    extra.update(extra_sidecar or {})
    return export_module(module, out_onnx, name, config, extra, check_parity, dynamic_batch=dynamic_batch,
                         atol=atol, rtol=rtol)
