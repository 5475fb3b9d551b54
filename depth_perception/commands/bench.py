"""`depth-perception bench {core,engine,node,stereo}`: timing figures for people (a table) and for CI (`--json`).

Each kind's command line is its own module here (`bench_core`, `bench_engine`, `bench_node`, `bench_stereo`),
over the figures that `eval.bench_core`, `engines.bench`, `eval.bench_node` and `eval.bench_stereo` compute.
Only the chosen kind's module is imported, so `bench core` never pays for torch or an engine runtime.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# kind -> (module, one-line help)
KINDS: dict[str, tuple[str, str]] = {
    "core": ("depth_perception.commands.bench_core", "message conversions and projections at KITTI size"),
    "engine": ("depth_perception.commands.bench_engine", "engine inference latency per backend"),
    "node": ("depth_perception.commands.bench_node", "end-to-end node latency over rclpy"),
    "stereo": ("depth_perception.commands.bench_stereo", "the classical sweep's time beside OpenCV SGBM's"),
}


def _chosen(kind: str) -> bool:
    """Whether this command line asks for `kind` (or for all help): only then is its module imported."""
    argv = sys.argv[1:]
    return "--help-all" in argv or (len(argv) >= 2 and argv[0] == "bench" and argv[1] == kind)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench_kind", metavar="{core,engine,node,stereo}")
    sub.required = True
    for kind, (module_name, help_text) in KINDS.items():
        p = sub.add_parser(kind, help=help_text)
        p.set_defaults(_bench_module=module_name)
        if _chosen(kind):
            importlib.import_module(module_name).add_arguments(p)


def run(args: argparse.Namespace) -> int:
    return int(importlib.import_module(args._bench_module).run(args) or 0)
