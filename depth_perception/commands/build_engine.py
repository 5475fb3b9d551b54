"""`depth-perception build-engine model.onnx [--fp16|--fp32] [--int8 --calib-dir DIR]`: a TensorRT plan + sidecar."""
from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from ..cli import CliError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("onnx", help="engine ONNX model (with its .json sidecar)")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--fp16", dest="precision", action="store_const", const="fp16",
                           help="half precision (default)")
    precision.add_argument("--fp32", dest="precision", action="store_const", const="fp32", help="full precision")
    precision.add_argument("--int8", dest="precision", action="store_const", const="int8",
                           help="int8 with entropy calibration (needs --calib-dir)")
    parser.set_defaults(precision="fp16")
    parser.add_argument("--calib-dir", help="calibration inputs: .npz files named by engine input, or images")
    parser.add_argument("--calib-limit", type=int, default=64, help="at most this many calibration files")
    parser.add_argument("--workspace-mb", type=int, default=1024, help="builder workspace in MiB (default 1024)")
    parser.add_argument("--dla-core", type=int, help="build for this DLA core (Jetson), GPU fallback on")
    parser.add_argument("--timing-cache", help="timing cache file (default: .trt_timing.cache beside the plan)")
    parser.add_argument("--out", help="plan to write (default: MODEL.<precision>.plan beside the ONNX)")


def run(args: argparse.Namespace) -> int:
    onnx = Path(args.onnx)
    if not onnx.is_file():
        raise CliError(f"ONNX model not found: {onnx}")
    if importlib.util.find_spec("tensorrt") is None:
        raise CliError("TensorRT is not installed here (the tensorrt Python package is missing); build plans on the "
                       "target (JetPack) or a machine with TensorRT 10", 1)
    from ..engines.build import BuildOptions, build_plan
    from ..engines.spec import EngineError

    try:
        options = BuildOptions(precision=args.precision, workspace_mb=args.workspace_mb, dla_core=args.dla_core,
                               calib_dir=args.calib_dir, calib_limit=args.calib_limit,
                               timing_cache=args.timing_cache)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    try:
        plan = build_plan(onnx, args.out, options)
    except EngineError as exc:
        raise CliError(str(exc), 1) from exc
    print(f"wrote {plan} ({args.precision}) and {plan.with_suffix('.json')}")
    return 0
