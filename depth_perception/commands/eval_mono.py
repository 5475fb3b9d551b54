"""`depth-perception eval mono`: the command line of eval.mono_eval."""
from __future__ import annotations

import argparse

from ..eval.mono_eval import MAX_DEPTH, MIN_DEPTH, SCALINGS, evaluate_engine, format_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", default="auto",
                        help="engine artifact (.onnx + .json), training checkpoint folder, or 'auto' (shipped)")
    parser.add_argument("--data", nargs="+", required=True, help="drive folders or roots of KITTI-layout drives")
    parser.add_argument("--split", help="monodepth2 split file (<date>/<drive> <frame> l|r)")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--scaling", choices=SCALINGS, default="auto",
                        help="auto: median for relative engines, none for metric ones")
    parser.add_argument("--crop", choices=("garg", "eigen", "none"), default="garg")
    parser.add_argument("--min-depth", type=float, default=MIN_DEPTH)
    parser.add_argument("--max-depth", type=float, default=MAX_DEPTH)
    parser.add_argument("--camera-height", type=float, default=1.65, help="for --scaling camera_height")
    parser.add_argument("--max-frames", type=int, default=0, help="per drive; 0 = all")
    parser.add_argument("--stride", type=int, default=1, help="evaluate every n-th frame")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--device", default="auto")


def run(args: argparse.Namespace) -> int:
    from ..utils import write_json

    report = evaluate_engine(
        args.engine, args.data, split=args.split, scaling=args.scaling, crop=args.crop, min_depth=args.min_depth,
        max_depth=args.max_depth, camera_height=args.camera_height, max_frames=args.max_frames, stride=args.stride,
        backend=args.backend, device=args.device,
    )
    print(format_table(report))
    if args.json:
        write_json(args.json, report)
    return 0
