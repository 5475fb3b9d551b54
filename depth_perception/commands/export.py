"""`depth-perception export CHECKPOINT_DIR --out model.onnx [--fp16]`: a training checkpoint -> ONNX + sidecar;
weights; `depth-perception export MODEL.onnx --fp16`: the fp16 variant of an exported model (for TensorRT-RTX)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import CliError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="training run folder (checkpoint.json + checkpoint.safetensors), or an "
                        "exported NAME.onnx with --fp16")
    parser.add_argument("--out", help="engine file to write (NAME.onnx; NAME.json and NAME.safetensors are written "
                        "beside it); with an .onnx input, the fp16 model (default NAME.fp16.onnx)")
    parser.add_argument("--fp16", action="store_true", help="also write NAME.fp16.onnx: fp16 weights and "
                        "activations, fp32 inputs and outputs (TensorRT-RTX builds it as an fp16 engine)")
    parser.add_argument("--fp16-tolerance", type=float, default=0.02,
                        help="largest median relative depth error of fp16 against fp32 (default 0.02)")
    parser.add_argument("--height", type=int, help="export height (default: the architecture config's)")
    parser.add_argument("--width", type=int, help="export width (default: the architecture config's)")
    parser.add_argument("--dynamic-batch", action="store_true", help="dynamic batch axis (TensorRT wants static)")
    parser.add_argument("--atol", type=float, default=1e-4, help="parity tolerance: absolute (default 1e-4)")
    parser.add_argument("--rtol", type=float, default=1e-3, help="parity tolerance: relative (default 1e-3)")
    parser.add_argument("--no-parity", action="store_true", help="skip the ONNX Runtime vs PyTorch check")


def _fp16(onnx_path: Path, out: str | None, tolerance: float) -> Path:
    from ..engines.fp16 import export_fp16
    from ..engines.spec import EngineError, read_sidecar

    try:
        path = export_fp16(onnx_path, out, tolerance)
    except EngineError as exc:  # a subclass of ValueError: parity missed, exit 1
        raise CliError(str(exc), 1) from None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    parity = read_sidecar(path)["fp16"]["parity_vs_fp32"]
    figures = ", ".join(f"{k} median {v['median_rel']:.2%} p99 {v['p99_rel']:.1%}" for k, v in parity.items())
    print(f"exported {path} (fp16, fp32 inputs and outputs; relative error against fp32: {figures})")
    return path


def run(args: argparse.Namespace) -> int:
    from ..engines.export import ParityError, export_checkpoint
    from ..engines.opcheck import UnsupportedOpError

    ckpt = Path(args.checkpoint)
    if not ckpt.exists():
        raise CliError(f"checkpoint not found: {ckpt}")
    if ckpt.suffix == ".onnx":
        if not args.fp16:
            raise CliError(f"{ckpt} is already exported: pass --fp16 for its fp16 variant")
        _fp16(ckpt, args.out, args.fp16_tolerance)
        return 0
    if not args.out:
        raise CliError("--out NAME.onnx is required when exporting a checkpoint")
    if not (ckpt / "checkpoint.json").exists() and not ckpt.with_suffix(".json").exists():
        raise CliError(f"{ckpt} is not a training checkpoint (no checkpoint.json)")
    if Path(args.out).suffix != ".onnx":
        raise CliError(f"--out must end in .onnx, got {args.out}")
    try:
        out = export_checkpoint(ckpt, args.out, height=args.height, width=args.width,
                                dynamic_batch=args.dynamic_batch, check_parity=not args.no_parity,
                                atol=args.atol, rtol=args.rtol)
    except (UnsupportedOpError, ParityError) as exc:
        raise CliError(str(exc), 1) from exc
    import json

    side = json.loads(out.with_suffix(".json").read_text())
    parity = side.get("parity", {})
    diffs = ", ".join(f"{k} {v:.2g}" for k, v in parity.get("max_abs_diff", {}).items())
    print(f"exported {out} ({side['kind']}, {side['architecture']['name']}, opset {side['onnx_opset']}, "
          f"inputs {[(i['name'], i['shape']) for i in side['inputs']]})")
    if parity.get("passed"):
        print(f"parity onnxruntime vs torch: max |diff| {diffs} (atol {parity['atol']}, rtol {parity['rtol']})")
    if args.fp16:
        _fp16(out, None, args.fp16_tolerance)
    return 0
