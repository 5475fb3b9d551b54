"""`depth-perception train mono`: train the monocular engine, then score `--eval-data` with the monodepth2 protocol
and export `--export` (the training itself: training.mono_train)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..models.mono import ARCHITECTURES, INIT_DEPTH
from ..training.mono_data import SUPERVISION
from ..training.mono_train import (
    MODES,
    MonoTrainOptions,
    architecture_name,
    build_trainer,
    command_line,
    data_seeds,
    deploy_module,
)
from ._options import add_loop_arguments, options_from


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", nargs="+", required=True, help="drive folders or roots holding KITTI raw drives")
    parser.add_argument("--out", required=True, help="output folder (checkpoint, scalars); re-running resumes")
    parser.add_argument("--mode", choices=MODES, default="mono+stereo")
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), default="narrow")
    parser.add_argument("--split", help="monodepth2 split file (<date>/<drive> <frame> l|r) under the --data roots")
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=640)
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="optimizer steps (default 2000)")
    length.add_argument("--epochs", type=int, help="passes over the training samples")
    parser.add_argument("--batch-size", type=int, default=12)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--min-depth", type=float, default=0.1)
    parser.add_argument("--max-depth", type=float, default=100.0)
    parser.add_argument("--no-augment", action="store_true", help="no colour jitter or flips")
    recipe = parser.add_argument_group("recipe choices (monodepth2's in brackets)")
    recipe.add_argument("--decoder-padding", choices=("zeros", "reflect"), default="zeros",
                        help="padding of the depth decoder's convolutions [reflect]")
    recipe.add_argument("--bn-init", choices=("zero", "standard"), default="zero",
                        help="last BatchNorm of each residual block: zero (blocks start as the identity) or "
                             "standard [standard]")
    recipe.add_argument("--init-depth", type=float, default=INIT_DEPTH,
                        help="metres where the depth heads start; 0 = the sigmoid's midpoint [0]")
    recipe.add_argument("--pose-width", type=int, help="the pose encoder's base width (default: the depth encoder's) "
                                                      "[64: a full ResNet-18 with a 256-channel decoder]")
    recipe.add_argument("--min-motion", type=float, default=0.0,
                        help="leave out samples whose camera moves less than this (m) to a neighbour frame "
                             "[Zhou's split leaves out static frames]")
    parser.add_argument("--init", help="warm start: a checkpoint folder or .safetensors (an engine's weights, e.g. "
                                       "engines/mono_default.safetensors) whose tensors of matching name and shape "
                                       "are copied in; a new run only")
    parser.add_argument("--supervision", choices=SUPERVISION, default="auto",
                        help="--mode supervised: the depth it learns from: auto (LiDAR, else the drive's "
                             "proj_depth/groundtruth), lidar, or groundtruth (dense on synthetic drives, objects "
                             "drives included: supervised samples need no neighbour frames)")
    parser.add_argument("--probe-every", type=int, default=50,
                        help="every N steps, the pose network against the true motion of fixed synthetic frame "
                             "pairs (cosine and scale in the scalar log and the progress bar); 0 = off")
    parser.add_argument("--probe-pairs", type=int, default=12, help="frame pairs of the pose probe")
    parser.add_argument("--probe-data", nargs="+",
                        help="synthetic drives of the pose probe (default: the synthetic drives among --data)")
    add_loop_arguments(parser)
    parser.add_argument("--eval-data", nargs="*", default=[], help="held-out drives scored after training")
    parser.add_argument("--eval-max-frames", type=int, default=0, help="per eval drive; 0 = all")
    parser.add_argument("--export", help="write the engine here (ENGINE.onnx + ENGINE.json) after training")


def export_engine(trained: nn.Module, out_onnx: str | Path, mode: str, training: dict[str, Any],
                  metrics: dict[str, Any]) -> Path:
    """Export the deploy form with the sidecar (metric for mono+stereo and supervised; relative for mono)."""
    try:
        from ..engines.export import export_module
    except ImportError as exc:
        raise RuntimeError(f"engine export is not available in this build: {exc}") from exc
    module = deploy_module(trained)
    extra = {"metric": mode != "mono", "depth_range": [module.min_depth, module.max_depth],
             "training": training, "metrics": metrics}
    return Path(export_module(module, out_onnx, architecture_name(trained), module.config, extra))


def run(args: argparse.Namespace) -> int:
    import os

    from ..utils import write_json

    torch.backends.cudnn.benchmark = True  # fixed input size
    trainer = build_trainer(options_from(MonoTrainOptions, args, augment=not args.no_augment))
    history = trainer.fit()
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    last = history[-1] if history else {}
    if last:
        print(f"mono {args.mode} {args.arch}: step {int(last['step'])} loss {last['loss']:.4f} -> {args.out}")
    metrics: dict[str, Any] = {}
    if args.eval_data:
        from ..eval.mono_eval import evaluate_engine, format_table

        report = evaluate_engine(args.out, args.eval_data, max_frames=args.eval_max_frames, device=args.device)
        print(format_table(report))
        write_json(Path(args.out) / "eval.json", report)
        metrics = {k: report[k] for k in ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")}
        metrics.update(scaling=report["scaling"], frames=report["frames"], data=[str(d) for d in args.eval_data])
    if args.export:
        steps = int(last.get("step", trainer.config.steps)) if last else trainer.config.steps
        training = {"command": command_line(), "mode": args.mode, "arch": args.arch,
                    "data": [str(d) for d in args.data], "seeds": data_seeds(args.data), "steps": steps,
                    "batch_size": args.batch_size, "height": args.height, "width": args.width,
                    "synthetic": bool(data_seeds(args.data)), "eval_data": [str(d) for d in args.eval_data],
                    "eval_seeds": data_seeds(args.eval_data) if args.eval_data else []}
        path = export_engine(trainer.model, args.export, args.mode, training, metrics)
        print(f"engine -> {path}")
    return 0
