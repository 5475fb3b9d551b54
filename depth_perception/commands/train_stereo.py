"""`depth-perception train stereo`: train the DPSNet + NAS stereo engine in its two stages (training.stereo_train)."""
from __future__ import annotations

import argparse

import torch

from ..geometry.infill import STEREO_HOLE_FILLS
from ..training.stereo_train import StereoTrainOptions, build_refine_trainer, build_trainer
from ._options import add_loop_arguments, options_from

REFINE_PLANES = 64  # the sweep the refinement is trained on: the stereo node's default


def classical_prior_fn(planes: int = REFINE_PLANES):
    """The refinement's prior as the stereo pipeline makes it: the classical sweep (compiled where numba is), the
    right view as given, over the frame's range; and the key that names its settings."""
    import dataclasses

    from ..geometry.plane_sweep import rectified_pose
    from ..pipelines.stereo_classical import ClassicalStereo, ClassicalSweepConfig

    sweep = ClassicalStereo(ClassicalSweepConfig(planes=planes))

    def prior(left, right, camera, baseline, min_depth, max_depth):
        sweep.config = dataclasses.replace(sweep.config, min_depth=min_depth, max_depth=max_depth)
        depth, conf, _ = sweep.compute(left, [(right, rectified_pose(baseline))], camera)
        return depth, conf

    fields = dataclasses.asdict(sweep.config)
    key = "classical " + " ".join(f"{k}={v}" for k, v in sorted(fields.items()) if k not in ("min_depth", "max_depth"))
    return prior, key


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", nargs="+", required=True, help="drive folders or roots holding KITTI-layout drives")
    parser.add_argument("--out", required=True, help="output folder (checkpoint, scalars); re-running resumes")
    parser.add_argument("--model", choices=("dpsnet", "refine"), default="dpsnet",
                        help="dpsnet: the DPSNet + NAS plane-sweep network; refine: a network that refines the "
                             "classical sweep (trained in one stage)")
    parser.add_argument("--stage", type=int, choices=(1, 2), default=1)
    parser.add_argument("--init", help="stage 2: the stage-1 checkpoint folder to start from; refine: weights to "
                                       "start from")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--planes", type=int, default=64)
    parser.add_argument("--views", type=int, default=1,
                        help="source views: 1 = the right camera; more add temporal frames")
    parser.add_argument("--frame-step", type=int, default=1, help="refine: use every n-th frame")
    parser.add_argument("--base", type=int, default=16, help="refine: base width of the network")
    parser.add_argument("--correct", choices=("all", "holes"), default="holes",
                        help="refine: correct only the pixels the sweep left as holes (the shipped recipe), or all")
    parser.add_argument("--loss", choices=("l1", "log"), default="log",
                        help="refine: the robust log(1 + |error| px) (the shipped recipe), or L1 on disparity over "
                             "its mean")
    parser.add_argument("--lookup", type=int, default=0,
                        help="refine: also show the network the photometric error at the prior disparity "
                             "shifted by -N..N px (a local cost volume; 0 = none)")
    parser.add_argument("--hole-fill", choices=STEREO_HOLE_FILLS, default="rows",
                        help="refine: fill the sweep's holes in the prior from the background side of each row, or "
                             "by the colour-guided in-fill of the sweep's disparities (stopped at image edges)")
    parser.add_argument("--prior-edge-snap", action="store_true",
                        help="refine: train on priors whose depth steps were moved onto the image's colour edges "
                             "(geometry.infill.snap_edges), as the pipeline's edge_snap makes them at run time")
    parser.add_argument("--min-depth", type=float, help="the engine's depth range (dpsnet: 1-80 m, refine: 0.3-200 m)")
    parser.add_argument("--max-depth", type=float)
    add_loop_arguments(parser)


def run(args: argparse.Namespace) -> int:
    torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick the fastest 3-D convolutions
    options = options_from(StereoTrainOptions, args)
    if options.model == "refine":
        trainer = build_refine_trainer(options, *classical_prior_fn())
    else:
        trainer = build_trainer(options)
    history = trainer.fit()
    if history:
        last = history[-1]
        what = "refine" if options.model == "refine" else f"stage {args.stage}"
        print(f"stereo {what}: step {int(last['step'])} loss {last['loss']:.4f} -> {args.out}")
    return 0
