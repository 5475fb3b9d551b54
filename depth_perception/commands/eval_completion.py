"""`depth-perception eval completion`: the command line of eval.completion_eval."""
from __future__ import annotations

import argparse

from ..eval.completion_eval import evaluate, format_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", default="auto",
                        help="engine artifact, training checkpoint folder, 'auto' (shipped engine) or 'classical'; "
                             "IP-Basic always runs beside it")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--data", nargs="+", help="drive folders or roots of KITTI-layout drives")
    where.add_argument("--scene", help="a real scene with ground truth: 'motorcycle' (Middlebury 2014, shipped by "
                                       "scikit-image) or a Middlebury 2014 scene folder (im0/im1/calib.txt/disp0.pfm)")
    parser.add_argument("--density", type=float, default=0.05,
                        help="--scene: share of ground-truth pixels in the random sparse pattern (default 0.05)")
    parser.add_argument("--beams", type=int, default=64, help="--scene: beams of the simulated scanner pattern")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--depth-root",
                        help="real KITTI: the depth-completion folder (train/, val/) matching the raw drives")
    parser.add_argument("--cameras", type=int, nargs="+", default=[2])
    parser.add_argument("--crop", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"),
                        help="bottom-centre crop before evaluation (KITTI validation: 352 1216)")
    parser.add_argument("--max-frames", type=int, default=0, help="per drive and camera; 0 = all")
    parser.add_argument("--stride", type=int, default=1, help="evaluate every n-th frame")
    parser.add_argument("--min-depth", type=float, default=0.5)
    parser.add_argument("--max-depth", type=float, default=90.0)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--device", default="auto")


def run_scene(args: argparse.Namespace) -> int:
    from ..errors import CliError
    from ..eval.real_scenes import (
        evaluate_completion_scene,
        format_completion,
        load_scene,
        random_pattern,
        scene_scanner_pattern,
    )
    from ..utils import write_json

    if not 0 < args.density < 1 or args.beams < 2:  # at 1 nothing is held out to score
        raise CliError(f"--density must be in (0, 1) and --beams >= 2, got {args.density} and {args.beams}")
    try:
        scene = load_scene(args.scene, metric=True)
    except (ValueError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from None
    patterns = {f"random_{args.density:g}": random_pattern(scene.depth, args.density),
                f"scanner_{args.beams}": scene_scanner_pattern(scene, beams=args.beams)}
    engines = ["classical"] + ([args.engine] if args.engine != "classical" else [])
    report = evaluate_completion_scene(scene, engines, patterns, backend=args.backend, device=args.device)
    print(format_completion(report))
    if args.json:
        write_json(args.json, report)
    return 0


def run(args: argparse.Namespace) -> int:
    from ..errors import CliError
    from ..utils import write_json

    if args.scene:
        return run_scene(args)
    try:
        report = evaluate(args.engine, args.data, cameras=args.cameras, crop=args.crop, max_frames=args.max_frames,
                          stride=args.stride, min_depth=args.min_depth, max_depth=args.max_depth,
                          backend=args.backend, device=args.device, depth_root=args.depth_root)
    except (ValueError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from exc
    print(format_table(report))
    if args.json:
        write_json(args.json, report)
    return 0
