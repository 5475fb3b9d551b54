"""`depth-perception bench engine ARTIFACT`: latency p50/p95, fps and peak memory per available backend (see
engines.bench), the TensorRT-RTX build figures, and `--record` of the CPU latencies in the sidecar."""
from __future__ import annotations

import argparse

from ..errors import CliError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("artifact", help="engine file (NAME.onnx with NAME.json; NAME.safetensors for torch)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per backend (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs first (default 5)")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads for CPU backends (0: library default)")
    parser.add_argument("--backends", nargs="+", help="only these configurations, e.g. onnxruntime-cpu torch-cpu")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--record", action="store_true",
                        help="store the CPU p50 of onnxruntime and torch in the engine's sidecar (cpu_latency_ms), "
                             "where backend=auto reads which of the two runs this engine faster on a CPU")
    parser.add_argument("--in-process", action="store_true",
                        help="time every backend in this process (faster; peak_mb of later backends then reads low "
                             "because memory freed by earlier ones is reused)")


def run(args: argparse.Namespace) -> int:
    from ..engines.bench import bench_artifact, cpu_record, format_table
    from ..utils import write_json

    if args.runs < 1 or args.warmup < 0:
        raise CliError(f"--runs must be >= 1 and --warmup >= 0, got {args.runs} and {args.warmup}")
    if args.threads < 0:
        raise CliError(f"--threads must be >= 0, got {args.threads}")
    if args.record and args.backends and not {"onnxruntime-cpu", "torch-cpu"} <= set(args.backends):
        raise CliError("--record needs onnxruntime-cpu and torch-cpu among --backends")
    report = bench_artifact(args.artifact, args.runs, args.warmup, args.threads, args.backends,
                            isolate=not args.in_process)
    report["isolated"] = not args.in_process
    print(format_table(report))
    if args.json:
        write_json(args.json, report)
    if args.record:
        from ..engines.spec import update_sidecar

        try:
            record = cpu_record(report)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        path = update_sidecar(args.artifact, "cpu_latency_ms", record)
        print(f"recorded cpu_latency_ms in {path}: onnxruntime {record['onnxruntime']} ms, torch {record['torch']} ms")
    return 0
