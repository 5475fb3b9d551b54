"""`depth-perception eval stereo`: the command line of eval.stereo_eval."""
from __future__ import annotations

import argparse

import numpy as np

from ..eval.stereo_eval import StereoEvalOptions, evaluate, format_table
from ..pipelines.stereo_classical import DEFAULT_PLANES
from ._options import options_from


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--data", nargs="+", help="drive folders or roots of KITTI-layout drives")
    where.add_argument("--scene", help="a real scene with ground truth: 'motorcycle' (Middlebury 2014, shipped by "
                                       "scikit-image), 'aloe' (Middlebury 2006, from OpenCV's sample data: "
                                       "tools/fetch_real_scenes.sh; disparity only, no calibration), 'chessboard' (the "
                                       "real rig of OpenCV's sample data, calibrated here, truth on the board), a "
                                       "Middlebury 2014 scene folder (im0/im1/calib.txt/disp0.pfm) or a folder with "
                                       "OpenCV's aloeL.jpg/aloeR.jpg/aloeGT.png; 'all': every real scene here, and "
                                       "their figures as ratios to SGBM's")
    parser.add_argument("--engine", nargs="*", default=["classical"],
                        help="methods besides SGBM: 'classical' and/or engine artifacts (default: classical)")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--min-depth", type=float, default=1.0)
    parser.add_argument("--max-depth", type=float, default=80.0)
    parser.add_argument("--planes", type=int, default=DEFAULT_PLANES, help="planes of the classical sweep")
    parser.add_argument("--no-edge-snap", dest="edge_snap", action="store_false",
                        help="keep the sweep's depth edges as matched (the pipeline's edge_snap off)")
    parser.add_argument("--image", help="--scene: write a picture here (PNG): the left image, the ground truth, and "
                                        "each method's depth with its error map")
    parser.add_argument("--sweep-width", type=int, default=0,
                        help="--scene: the classical sweep's width, for the sweep alone and under a refinement engine "
                             "(0: the pipeline's automatic choice; SGBM works at the scene's own)")
    parser.add_argument("--max-frames", type=int, default=0, help="per drive; 0 = all")
    parser.add_argument("--stride", type=int, default=1, help="evaluate every n-th frame")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--device", default="auto")


def run(args: argparse.Namespace) -> int:
    from ..utils import write_json

    if args.scene == "all":
        return run_all_scenes(args)
    if args.scene:
        from ..errors import CliError
        from ..eval.real_scenes import evaluate_stereo_scenes, format_stereo, load_scenes

        try:
            scenes = load_scenes(args.scene)
        except (ValueError, FileNotFoundError) as exc:
            raise CliError(str(exc)) from None
        scene = scenes[0]
        depths: dict = {}
        report = evaluate_stereo_scenes(scenes, list(args.engine), backend=args.backend, device=args.device,
                                        planes=args.planes, sweep_width=args.sweep_width, edge_snap=args.edge_snap,
                                        depths=depths)
        print(format_stereo(report))
        if args.image:
            from ..eval.report import depth_panel

            lo, hi = report["depth_range"]
            rows = report["methods"]
            named = {f"{name}: bad-3 {rows[name]['bad3']:.3f}, AbsRel {rows[name]['abs_rel']:.4f}": d
                     for name, d in depths.items()}
            depth_panel(args.image, scene.left, np.nan_to_num(scene.depth, nan=0.0), named,
                        title=f"{scene.name}: {args.planes} planes, edge snap {'on' if args.edge_snap else 'off'}",
                        min_depth=lo, max_depth=hi)
            print(f"picture: {args.image}")
        if args.json:
            write_json(args.json, report)
        return 0
    if args.image or args.sweep_width:
        from ..errors import CliError

        raise CliError("--image and --sweep-width go with --scene (drives are swept at --width)")
    report = evaluate(options_from(StereoEvalOptions, args))
    print(format_table(report))
    if args.json:
        write_json(args.json, report)
    return 0


def run_all_scenes(args: argparse.Namespace) -> int:
    """`--scene all`: every real scene that is here, each table, then bad-3 and AbsRel as ratios to SGBM's;
    `--image` draws those ratios as bars."""
    from ..eval.real_scenes import (
        REAL_STEREO_SCENES,
        available_stereo_scenes,
        evaluate_stereo_scenes,
        format_stereo,
        format_stereo_summary,
        load_scenes,
        stereo_summary,
        summary_plot,
    )
    from ..utils import write_json

    reports, refused = {}, {}
    here = available_stereo_scenes()
    for name in here:
        try:
            reports[name] = evaluate_stereo_scenes(load_scenes(name), list(args.engine), backend=args.backend,
                                                   device=args.device, planes=args.planes,
                                                   sweep_width=args.sweep_width, edge_snap=args.edge_snap)
        except ValueError as exc:  # an engine whose depth range the scene's lies outside: the other scenes run
            refused[name] = str(exc)
            print(f"{name}: not scored: {exc}\n")
            continue
        print(format_stereo(reports[name]) + "\n")
    summary = stereo_summary(reports)
    print(format_stereo_summary(summary))
    missing = [n for n in REAL_STEREO_SCENES if n not in here]  # refused ones were said above
    if missing:
        print(f"not here: {', '.join(missing)} (`bash tools/fetch_real_scenes.sh` fetches them)")
    if args.image:
        summary_plot(args.image, summary)
        print(f"picture: {args.image}")
    if args.json:
        write_json(args.json, {"scenes": reports, "vs_sgbm": summary, "refused": refused})
    return 0
