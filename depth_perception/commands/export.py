"""`depth-perception export CHECKPOINT_DIR --out model.onnx`: a training checkpoint -> ONNX + sidecar + weights."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..cli import CliError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="training run folder (checkpoint.json + checkpoint.safetensors)")
    parser.add_argument("--out", required=True, help="engine file to write (NAME.onnx; NAME.json and "
                        "NAME.safetensors are written beside it)")
    parser.add_argument("--height", type=int, help="export height (default: the architecture config's)")
    parser.add_argument("--width", type=int, help="export width (default: the architecture config's)")
    parser.add_argument("--dynamic-batch", action="store_true", help="dynamic batch axis (TensorRT wants static)")
    parser.add_argument("--atol", type=float, default=1e-4, help="parity tolerance: absolute (default 1e-4)")
    parser.add_argument("--rtol", type=float, default=1e-3, help="parity tolerance: relative (default 1e-3)")
    parser.add_argument("--no-parity", action="store_true", help="skip the ONNX Runtime vs PyTorch check")


def run(args: argparse.Namespace) -> int:
    from ..engines.export import ParityError, export_checkpoint
    from ..engines.opcheck import UnsupportedOpError

    ckpt = Path(args.checkpoint)
    if not ckpt.exists():
        raise CliError(f"checkpoint not found: {ckpt}")
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
    return 0
