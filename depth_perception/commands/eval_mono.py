"""`depth-perception eval mono`: the command line of eval.mono_eval."""
from __future__ import annotations

import argparse

from ..eval.mono_eval import MAX_DEPTH, MIN_DEPTH, SCALINGS, evaluate_engine, format_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", default="auto",
                        help="engine artifact (.onnx + .json), training checkpoint folder, or 'auto' (shipped)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--data", nargs="+", help="drive folders or roots of KITTI-layout drives")
    where.add_argument("--scene", help="a real scene with ground truth: 'motorcycle' (Middlebury 2014, shipped by "
                                       "scikit-image) or a Middlebury 2014 scene folder; the engine beside a constant "
                                       "depth, median-scaled and at its own scale (--split, --scaling, --crop, "
                                       "--min/max-depth and --camera-height are for --data)")
    parser.add_argument("--image", help="--scene: write a picture here (PNG): the left image, the ground truth and the "
                                        "engine's median-scaled depth with its error map")
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


def run_scene(args: argparse.Namespace) -> int:
    from ..errors import CliError
    from ..eval.real_scenes import evaluate_mono_scene, format_mono, load_scene
    from ..utils import write_json

    depths: dict = {}
    try:
        scene = load_scene(args.scene, metric=True)
        report = evaluate_mono_scene(scene, args.engine, backend=args.backend, device=args.device, depths=depths)
    except (ValueError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from None
    print(format_mono(report))
    if args.image:
        import numpy as np

        from ..eval.report import depth_panel

        (name, depth), = depths.items()
        row = report["methods"][f"{name} median-scaled"]
        gt = np.nan_to_num(scene.depth, nan=0.0)
        valid = gt[gt > 0]
        depth_panel(args.image, scene.left, gt,
                    {f"{name} median-scaled: AbsRel {row['abs_rel']:.3f}": depth * row["scale"]},
                    title=f"{scene.name}: monocular depth", min_depth=float(valid.min()), max_depth=float(valid.max()))
        print(f"picture: {args.image}")
    if args.json:
        write_json(args.json, report)
    return 0


def run(args: argparse.Namespace) -> int:
    from ..utils import write_json

    if args.scene:
        return run_scene(args)
    report = evaluate_engine(
        args.engine, args.data, split=args.split, scaling=args.scaling, crop=args.crop, min_depth=args.min_depth,
        max_depth=args.max_depth, camera_height=args.camera_height, max_frames=args.max_frames, stride=args.stride,
        backend=args.backend, device=args.device,
    )
    print(format_table(report))
    if args.json:
        write_json(args.json, report)
    return 0
