"""`depth-perception train stereo`: train the DPSNet + NAS stereo engine in its two stages (training.stereo_train)."""
from __future__ import annotations

import argparse

import torch

from ..training.stereo_train import StereoTrainOptions, build_trainer
from ._options import add_loop_arguments, options_from


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", nargs="+", required=True, help="drive folders or roots holding KITTI-layout drives")
    parser.add_argument("--out", required=True, help="output folder (checkpoint, scalars); re-running resumes")
    parser.add_argument("--stage", type=int, choices=(1, 2), default=1)
    parser.add_argument("--init", help="stage 2: the stage-1 checkpoint folder to start from")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--planes", type=int, default=64)
    parser.add_argument("--views", type=int, default=1,
                        help="source views: 1 = the right camera; more add temporal frames")
    parser.add_argument("--min-depth", type=float, default=1.0)
    parser.add_argument("--max-depth", type=float, default=80.0)
    add_loop_arguments(parser)


def run(args: argparse.Namespace) -> int:
    torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick the fastest 3-D convolutions
    trainer = build_trainer(options_from(StereoTrainOptions, args))
    history = trainer.fit()
    if history:
        last = history[-1]
        print(f"stereo stage {args.stage}: step {int(last['step'])} loss {last['loss']:.4f} -> {args.out}")
    return 0
