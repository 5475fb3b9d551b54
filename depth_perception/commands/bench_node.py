"""`depth-perception bench node`: end-to-end node latency over DDS, engine time and overhead per node (the
figures: eval.bench_node)."""
from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any

from ..errors import CliError
from ..eval.bench_node import CAMERA, KINDS, TARGET_OVERHEAD_MS, bench_kind, engines_by_kind
from ..ros.image import DEPTH_ENCODINGS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", default=None, metavar="PATH", help="write the figures here (stable keys)")
    parser.add_argument("--seconds", type=float, default=10.0, help="publishing time per node (default 10)")
    parser.add_argument("--rate", type=float, default=10.0, help="input rate in Hz (default 10)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS), help="nodes to run")
    parser.add_argument("--cloud-decimation", type=int, default=1, metavar="N",
                        help="the nodes' cloud_decimation (default 1: a full 1242x375 cloud of 7.5 MB per frame)")
    parser.add_argument("--outputs", nargs="+", choices=("depth", "points"), default=["depth", "points"],
                        help="what the bench subscribes to (default both; the node computes only subscribed "
                             "outputs); latency is to the cloud when it is subscribed, else to the depth image")
    parser.add_argument("--encoding", choices=DEPTH_ENCODINGS, default="32FC1",
                        help="the depth image's encoding (the nodes' output_encoding; default 32FC1 metres, 1.9 MB "
                             "a frame; 16UC1 millimetres is half of it)")
    parser.add_argument("--engine", action="append", default=[], metavar="KIND=PATH",
                        help="engine per kind (default: 'auto': the shipped engine, else classical; mono is "
                             "skipped without an engine)")


def run(args: argparse.Namespace) -> int:
    if args.cloud_decimation < 1:
        raise CliError(f"--cloud-decimation must be >= 1, got {args.cloud_decimation}")
    if not 0 < args.seconds < math.inf or not 0 < args.rate < math.inf:
        raise CliError(f"--seconds and --rate must be finite and > 0, got {args.seconds} and {args.rate}")
    try:
        engines = engines_by_kind(args.engine)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    unused = sorted(set(engines) - set(args.kinds))
    if unused:
        raise CliError(f"--engine names {', '.join(unused)}, which --kinds does not run ({' '.join(args.kinds)})")

    def log(msg: str) -> None:
        if not os.environ.get("DEPTH_PERCEPTION_QUIET"):
            print(f"bench node: {msg}", file=sys.stderr, flush=True)

    outputs = tuple("depth/points" if name == "points" else name for name in args.outputs)
    last = "points" if "depth/points" in outputs else "depth image"
    results: dict[str, Any] = {}
    for kind in args.kinds:
        engine = engines.get(kind, "auto")
        log(f"{kind}: {args.seconds:.0f} s at {args.rate:g} Hz, {CAMERA.width}x{CAMERA.height}, engine {engine}, "
            f"depth as {args.encoding}")
        try:
            result = bench_kind(kind, engine, args.seconds, args.rate, args.cloud_decimation, outputs, args.encoding)
        except Exception as exc:  # one kind failing must not hide the others
            result = {"error": f"{type(exc).__name__}: {exc}"}
        results[kind] = result
    header = (f"{'node':<11} {'engine':<12} {'in':>4} {'out':>4} {'p50 ms':>8} {'p95 ms':>8} {'engine':>8} "
              f"{'queue':>7} {'overhead':>9} {'dds floor':>9} {'node adds':>9} {'in-node':>8} {'rss +MB':>8} "
              f"{'2nd half':>8}")
    print(header)
    for kind, r in results.items():
        if "p50_ms" not in r:
            print(f"{kind:<11} {r.get('skipped') or r.get('error')}")
            continue
        print(f"{kind:<11} {os.path.basename(str(r['engine']))[:12]:<12} {r['frames_sent']:>4} {r['frames_out']:>4} "
              f"{r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['engine_p50_ms']:>8.1f} {r['queue_p50_ms']:>7.1f} "
              f"{r['overhead_p50_ms']:>9.1f} {r['dds_floor_p50_ms']:>9.1f} {r['node_added_p50_ms']:>9.1f} "
              f"{r['node_overhead_p50_ms']:>8.1f} {r['rss_growth_mb']:>8.1f} "
              f"{r['rss_growth_second_half_mb']:>8.1f}")
    print(f"overhead = latency (input stamp -> {last} received) - engine - queue wait; target <= "
          f"{TARGET_OVERHEAD_MS:.0f} ms")
    print("dds floor = the same inputs answered at once by a relay with prebuilt outputs of the same sizes (DDS "
          "alone); node adds = overhead - dds floor")
    for kind, r in results.items():
        if r.get("message_mb"):
            print(f"{kind} messages: " + ", ".join(f"{name} {mb:.2f} MB" for name, mb in r["message_mb"].items())
                  + f" (depth as {args.encoding})")
    if args.json:
        from ..utils import write_json

        write_json(args.json, {"width": CAMERA.width, "height": CAMERA.height, "rate_hz": args.rate,
                               "cloud_decimation": args.cloud_decimation, "outputs": list(outputs),
                               "encoding": args.encoding,
                               "seconds": args.seconds, "target_overhead_ms": TARGET_OVERHEAD_MS, "nodes": results})
    failed = [kind for kind, r in results.items() if "p50_ms" not in r]
    if failed:  # the table and the JSON are written first: the other kinds' figures are kept
        raise CliError(f"no figures for {', '.join(failed)} (the reason is in the table above)", 1)
    return 0
