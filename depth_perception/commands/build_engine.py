"""`depth-perception build-engine model.onnx [--runtime tensorrt|tensorrt-rtx] [--fp16|--fp32|--int8]`:
a TensorRT or TensorRT-RTX plan + its own sidecar (the ONNX's sidecar is never written)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import CliError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("onnx", help="engine ONNX model (with its .json sidecar)")
    parser.add_argument("--runtime", choices=("tensorrt", "tensorrt-rtx"),
                        help="TensorRT (JetPack; needs a GPU) or TensorRT-RTX (ahead of time, no GPU needed; "
                             "precision is the ONNX's). Default: tensorrt where it imports, else tensorrt-rtx")
    parser.add_argument("--compute-capability", action="append", default=[], metavar="SM",
                        help="TensorRT-RTX target, repeatable: SM75, SM80, SM86, SM89, SM120, SM121 (default: all)")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--fp16", dest="precision", action="store_const", const="fp16",
                           help="half precision (default)")
    precision.add_argument("--fp32", dest="precision", action="store_const", const="fp32", help="full precision")
    precision.add_argument("--int8", dest="precision", action="store_const", const="int8",
                           help="int8 with entropy calibration (needs --calib-dir)")
    parser.set_defaults(precision=None)
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
    from ..engines.build import BuildOptions, build_plan, default_runtime
    from ..engines.spec import EngineError, read_sidecar

    runtime = args.runtime or default_runtime()
    if runtime is None:
        raise CliError("neither TensorRT (import tensorrt) nor TensorRT-RTX (import tensorrt_rtx) is installed here: "
                       "pip install tensorrt-rtx-cu12, or build plans on the target (JetPack)", 1)
    rtx = runtime == "tensorrt-rtx"
    try:
        precision = args.precision or ("fp32" if rtx else "fp16")
        if rtx and args.precision != "int8":  # int8 is refused by BuildOptions, naming the TensorRT option
            precision = str(read_sidecar(onnx).get("precision", "fp32"))
            if args.precision not in (None, precision):
                raise CliError(f"TensorRT-RTX takes its precision from the ONNX ({onnx.name} is {precision}): for "
                               "fp16 build the model that `depth-perception export --fp16` writes (MODEL.fp16.onnx)")
        options = BuildOptions(precision=precision, workspace_mb=args.workspace_mb, dla_core=args.dla_core,
                               calib_dir=args.calib_dir, calib_limit=args.calib_limit,
                               timing_cache=args.timing_cache, runtime=runtime,
                               compute_capabilities=tuple(args.compute_capability))
    except (ValueError, EngineError) as exc:
        raise CliError(str(exc)) from exc
    try:
        plan = build_plan(onnx, args.out, options)
    except EngineError as exc:  # an EngineError is a ValueError too: a build that failed inside, exit 1
        raise CliError(str(exc), 1) from None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    built = read_sidecar(plan)["tensorrt"]
    targets = f", for {' '.join(built['compute_capabilities'])}" if rtx else ""
    print(f"wrote {plan} ({runtime} {built['version']}, {precision}{targets}, {plan.stat().st_size / 1e6:.1f} MB "
          f"in {built['build_s']:.1f} s) and {plan.with_suffix('.json')}")
    return 0
