"""`depth-perception train completion`: train NLSPN on KITTI depth-completion-layout drives, optionally export.

The recipe follows NLSPN's KITTI setup: L1 + L2 loss on the final depth over pixels with ground truth, random
240x1216 crops below the top 100 rows, flips and colour jitter, T = 18 propagation steps. The checkpoint's
architecture config carries the export size (`--export-height/--export-width`; the network is fully
convolutional, so it trains on crops and deploys on whole frames). `--eval-data` scores the result beside the
classical IP-Basic baseline; `--export` writes the engine artifact with the training and evaluation figures.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from .completion_data import CompletionDriveDataset
from .completion_losses import l1_l2_loss
from .trainer import TrainConfig, Trainer, add_loop_arguments

ARCHS = ("nlspn", "nlspn_light")


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


def model_config(args: argparse.Namespace) -> dict[str, Any]:
    config: dict[str, Any] = dict(
        height=args.export_height, width=args.export_width, iterations=args.iterations,
        prop_kernel=args.prop_kernel, preserve_input=not args.no_preserve_input, max_depth=args.max_depth,
    )
    if args.width_base:
        config["width_base"] = args.width_base
    return config


def make_loss(init_weight: float = 0.0) -> Any:
    """NLSPN's loss on the final depth; `init_weight` > 0 also supervises the initial depth (our option: it
    matters where the propagation cannot reach, e.g. above the LiDAR's field of view on dense synthetic truth)."""
    if init_weight < 0:
        raise ValueError(f"init_weight must be >= 0, got {init_weight}")

    def loss_fn(net: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        out = net.forward_train(batch["image"], batch["sparse_depth"])  # type: ignore[operator]
        loss, l1, l2 = l1_l2_loss(out["depth"].float(), batch["depth"])
        init_loss, l1_init, _ = l1_l2_loss(out["init_depth"].float(), batch["depth"])
        if init_weight > 0:
            loss = loss + init_weight * init_loss
        return loss, {"l1": float(l1.detach()), "l2": float(l2.detach()), "l1_init": float(l1_init.detach())}

    return loss_fn


def build_trainer(args: argparse.Namespace) -> Trainer:
    from ..models.registry import build_model

    model = build_model(args.arch, **model_config(args))
    dataset = CompletionDriveDataset(
        args.data, args.height, args.width, top_crop=args.top_crop, scale=args.scale, cameras=args.cameras,
        max_depth=args.max_depth, depth_root=args.depth_root,
    )
    if len(dataset) == 0:
        raise ValueError(f"no frames with ground truth (proj_depth/groundtruth) in {args.data}")
    steps = args.steps if args.steps is not None else 2000
    if args.epochs is not None:
        world = int(__import__("os").environ.get("WORLD_SIZE", "1"))
        steps = max(1, math.ceil(args.epochs * len(dataset) / (args.batch_size * world)))
    cfg = TrainConfig(
        out_dir=args.out, steps=steps, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
        num_workers=args.workers, seed=args.seed, log_every=args.log_every, ckpt_every=args.ckpt_every,
        max_seconds=60.0 * args.max_minutes, device=args.device,
        lr_milestones=(int(steps * 0.6), int(steps * 0.85)), lr_gamma=0.3, grad_clip=5.0,
        amp=args.amp,
    )
    meta = {
        "data": [str(d) for d in args.data], "frames": len(dataset), "crop": [args.height, args.width],
        "top_crop": args.top_crop, "scale": args.scale, "command": " ".join(["depth-perception", *sys.argv[1:]]),
    }
    return Trainer(model, make_loss(args.init_weight), dataset, cfg, {"name": args.arch, "config": model.config},
                   extra_meta=meta)


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
    from ..cli import CliError

    try:
        trainer = build_trainer(args)
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
