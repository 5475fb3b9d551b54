"""`depth-perception train completion`: train NLSPN, score `--eval-data`, export `--export` (the training:
training.completion_train)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..geometry.infill import COMPLETION_PRIORS
from ..models.nlspn import GUIDANCE
from ..training.completion_train import ARCHS, CompletionTrainOptions, build_trainer
from ._options import add_loop_arguments, options_from


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", nargs="+", required=True, help="drive folders or roots holding KITTI-layout drives")
    parser.add_argument("--out", required=True, help="output folder (checkpoint, scalars); re-running resumes")
    parser.add_argument("--depth-root",
                        help="real KITTI: the depth-completion folder (train/, val/) matching the raw drives")
    parser.add_argument("--arch", choices=ARCHS, default="nlspn",
                        help="nlspn: ResNet-34, width 64 (the paper); nlspn_light: ResNet-18, width 16 (embedded)")
    parser.add_argument("--width-base", type=int, help="override the architecture's base width")
    parser.add_argument("--iterations", type=int, default=18, help="propagation steps T")
    parser.add_argument("--prop-kernel", type=int, default=3, help="k: K = k*k - 1 neighbours")
    parser.add_argument("--no-preserve-input", action="store_true",
                        help="do not re-impose the sparse measurements after each propagation step")
    parser.add_argument("--prior", choices=COMPLETION_PRIORS, default="none",
                        help="ipbasic: the network refines the classical in-fill (an extra engine input) and sees "
                             "depth divided by a per-image scale, so it starts as good as IP-Basic at any depth range; "
                             "guided: the same over the colour-guided in-fill (geometry.infill.guided_prior)")
    parser.add_argument("--no-correction", dest="correction", action="store_false",
                        help="with --prior: no initial-depth correction; only the propagation is learned, starting "
                             "from the in-fill itself")
    parser.add_argument("--guidance", choices=GUIDANCE, default="deep",
                        help="what the confidence and propagation heads read: the encoder-decoder's features (deep, "
                             "the paper's), or a 7x7 neighbourhood of colour and depth (local: no encoder)")
    parser.add_argument("--init", help="warm start: a checkpoint folder or .safetensors (an engine's weights) whose "
                                       "tensors of matching name and shape are copied in; a new run only")
    parser.add_argument("--init-skip", nargs="+", default=[], metavar="PREFIX",
                        help="with --init: tensors whose names start with these stay as initialised (e.g. "
                             "propagation.conv_offset_aff: the propagation starts again from none)")
    parser.add_argument("--sensor-patterns", type=float, default=0.0,
                        help="share of samples whose sparse input is drawn from the ground truth in a random "
                             "pattern (0.5-10%% random, 16-128 beam scanners, clusters) instead of the LiDAR")
    parser.add_argument("--height", type=int, default=240, help="training crop height")
    parser.add_argument("--width", type=int, default=1216, help="training crop width")
    parser.add_argument("--top-crop", type=int, default=100, help="rows removed at the top before cropping")
    parser.add_argument("--scale", type=float, default=1.0, help="resize frames by this factor before cropping")
    parser.add_argument("--cameras", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--max-depth", type=float, default=90.0)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--steps", type=int, help="optimizer steps (default 2000)")
    group.add_argument("--epochs", type=float, help="passes over the data (converted to steps)")
    parser.add_argument("--init-weight", type=float, default=0.0,
                        help="weight of an extra L1 + L2 loss on the initial depth (0 = the paper: final depth only)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    add_loop_arguments(parser)
    parser.add_argument("--export", help="write the engine artifact here (ENGINE.onnx + ENGINE.json)")
    parser.add_argument("--export-height", type=int, default=352)
    parser.add_argument("--export-width", type=int, default=1216)
    parser.add_argument("--eval-data", nargs="+", help="held-out drives scored after training (with IP-Basic beside)")
    parser.add_argument("--eval-max-frames", type=int, default=0, help="per drive; 0 = all")


def export_trained(out_dir: str | Path, onnx_path: str | Path, extra_sidecar: dict[str, Any]) -> Path:
    """Rebuild the deploy module from a checkpoint folder and write the engine artifact (+ sidecar)."""
    from ..models.registry import build_model
    from ..training.checkpoint import load_weights, read_meta

    arch = read_meta(out_dir)["model"]
    module = build_model(arch["name"], **arch["config"]).eval()
    load_weights(out_dir, module)
    from ..engines.export import export_module

    return Path(export_module(module, onnx_path, arch["name"], arch["config"], extra_sidecar))


def run(args: argparse.Namespace) -> int:
    from ..errors import CliError

    options = options_from(CompletionTrainOptions, args, preserve_input=not args.no_preserve_input)
    try:
        trainer = build_trainer(options)
    except (ValueError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from exc
    history = trainer.fit()
    if not trainer.is_main:
        return 0
    last = history[-1] if history else {}
    if last:
        print(f"completion {args.arch}: step {int(last['step'])} loss {last['loss']:.4f} "
              f"L1 {last.get('l1', float('nan')):.3f} m -> {args.out}")
    metrics: dict[str, Any] = {}
    if args.eval_data:
        from ..eval.completion_eval import evaluate, format_table

        report = evaluate(args.out, args.eval_data, max_frames=args.eval_max_frames, device=args.device,
                          max_depth=args.max_depth, depth_root=args.depth_root)
        print(format_table(report))
        metrics = {"eval_data": [str(d) for d in args.eval_data], "frames": report["frames"], **report["methods"]}
    if args.export:
        training = {
            "command": trainer.extra_meta.get("command"), "data": [str(d) for d in args.data],
            "steps": int(last.get("step", 0)), "final_loss": last.get("loss"), "crop": [args.height, args.width],
            "arch": args.arch,
        }
        path = export_trained(args.out, args.export, {"training": training, "metrics": metrics})
        print(f"exported {path}")
    return 0
