"""`depth-perception bench {core,engine,node}`: timing figures for people (a table) and for CI (`--json`).

Each kind lives in its own module with `add_arguments(parser)` and `run(args)`: core in `eval.bench_core`, engine in
`engines.bench`, node in `nodes.bench`. Only the chosen kind's module is imported, so `bench core` never pays for
torch or an engine runtime.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..cli import CliError

# kind -> (module, one-line help)
KINDS: dict[str, tuple[str, str]] = {
    "core": ("depth_perception.eval.bench_core", "message conversions and projections at KITTI size"),
    "engine": ("depth_perception.engines.bench", "engine inference latency per backend"),
    "node": ("depth_perception.nodes.bench", "end-to-end node latency over rclpy"),
}


def _chosen(kind: str) -> bool:
    """Whether this command line asks for `kind` (or for all help): only then is its module imported."""
    argv = sys.argv[1:]
    return "--help-all" in argv or (len(argv) >= 2 and argv[0] == "bench" and argv[1] == kind)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench_kind", metavar="{core,engine,node}")
    sub.required = True
    for kind, (module_name, help_text) in KINDS.items():
        module = None
        if _chosen(kind):
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name != module_name:
                    raise
        if module is None and _chosen(kind):
            # Take any arguments as plain words, so run() says what is missing instead of argparse complaining.
            p = sub.add_parser(kind, help=help_text, prefix_chars="\0", add_help=False)
            p.add_argument("_rest", nargs="*", help=argparse.SUPPRESS)
            p.set_defaults(_bench_missing=True)
        else:
            p = sub.add_parser(kind, help=help_text)
        p.set_defaults(_bench_module=module_name)
        if module is not None:
            module.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "_bench_missing", False):
        raise CliError(f"bench {args.bench_kind} is not available yet ({args._bench_module} is missing)", 1)
    try:
        module = importlib.import_module(args._bench_module)
    except ModuleNotFoundError as exc:
        if exc.name != args._bench_module:
            raise
        raise CliError(f"bench {args.bench_kind} is not available yet ({args._bench_module} is missing)", 1) from None
    return int(module.run(args) or 0)
