"""`depth-perception bench core`: message conversions and projections at KITTI size (figures: eval.bench_core)."""
from __future__ import annotations

import argparse

from ..eval.bench_core import format_table, run_core


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON here")
    parser.add_argument("--repeat", type=int, default=50, help="timed runs per case (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic inputs")


def run(args: argparse.Namespace) -> int:
    from ..errors import CliError
    from ..utils import write_json

    if args.repeat < 1:
        raise CliError(f"--repeat must be >= 1, got {args.repeat}", 2)
    figures = run_core(args.repeat, args.seed)
    print(format_table(figures))
    if args.json:
        write_json(args.json, figures)
    return 0
