#!/usr/bin/env python3
"""Latency of architecture variants at several sizes, before any training (weights do not change latency).

    python tools/bench_variants.py --arch nlspn nlspn_light --sizes 352x1216 176x608 --json out/bench/variants.json

Each (architecture, size) is built with random weights, exported to ONNX in a temporary folder and timed with
`depth-perception bench engine`'s code (ONNX Runtime and PyTorch on this machine's CPU, CUDA where present).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", required=True, help="registered architectures (models/registry.py)")
    parser.add_argument("--sizes", nargs="+", required=True, help="HEIGHTxWIDTH, e.g. 352x1216")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: library default)")
    parser.add_argument("--backends", nargs="+", help="only these configurations, e.g. onnxruntime-cpu")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import torch

    from depth_perception.engines.bench import bench_artifact
    from depth_perception.engines.export import export_module
    from depth_perception.models.registry import build_model

    try:
        sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes]
    except ValueError:
        parser.error(f"sizes must look like 352x1216, got {args.sizes}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.arch:
            for h, w in sizes:
                torch.manual_seed(0)
                module = build_model(arch, height=h, width=w).eval()
                onnx = Path(tmp) / f"{arch}_{h}x{w}.onnx"
                export_module(module, onnx, arch, module.config, check_parity=False)
                report = bench_artifact(onnx, runs=args.runs, warmup=1, threads=args.threads or None,
                                        only=args.backends)
                row = {"arch": arch, "height": h, "width": w, "params_m": report.get("params", 0) / 1e6,
                       "gflops": report.get("gflops"), "backends": report["results"]}
                results.append(row)
                for name, fig in report["results"].items():
                    print(f"{arch:12s} {h:4d}x{w:<5d} {name:18s} p50 {fig['p50_ms']:9.1f} ms  "
                          f"peak {fig.get('peak_mb', float('nan')):7.1f} MB", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
