"""`depth-perception bench stereo`: the classical sweep (compiled and numpy) beside OpenCV StereoSGBM on the same
frames, with the ratio of their times (figures: eval.bench_stereo)."""
from __future__ import annotations

import argparse

from ..pipelines.stereo_classical import DEFAULT_PLANES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", nargs="+", required=True, help="drive folders or roots of KITTI-layout drives")
    parser.add_argument("--max-frames", type=int, default=10, help="per drive (default 10)")
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--min-depth", type=float, default=1.0)
    parser.add_argument("--max-depth", type=float, default=80.0)
    parser.add_argument("--planes", type=int, default=DEFAULT_PLANES)
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON here")


def run(args: argparse.Namespace) -> int:
    from ..eval.bench_stereo import bench_stereo, format_table
    from ..eval.stereo_eval import StereoEvalOptions
    from ..utils import write_json
    from ._options import options_from

    report = bench_stereo(options_from(StereoEvalOptions, args))
    print(format_table(report))
    if args.json:
        write_json(args.json, report)
    return 0
