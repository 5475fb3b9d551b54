"""`depth-perception train completion`: train NLSPN on KITTI depth-completion-layout drives, optionally export.

The recipe follows NLSPN's KITTI setup: L1 + L2 loss on the final depth over pixels with ground truth, random
240x1216 crops below the top 100 rows, flips and colour jitter, T = 18 propagation steps. The checkpoint's
architecture config carries the export size (`--export-height/--export-width`; the network is fully
convolutional, so it trains on crops and deploys on whole frames). `--eval-data` scores the result beside the
classical IP-Basic baseline; `--export` writes the engine artifact with the training and evaluation figures.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ..geometry.infill import COMPLETION_PRIORS
from .completion_data import CompletionDriveDataset
from .completion_losses import l1_l2_loss
from .trainer import LoopOptions, Trainer

ARCHS = ("nlspn", "nlspn_light")


@dataclass(kw_only=True)
class CompletionTrainOptions(LoopOptions):
    """What `train completion` trains (its command line, one field per option; help in commands/)."""

    data: list[str]
    out: str
    depth_root: str | None = None
    arch: str = "nlspn"
    width_base: int | None = None
    iterations: int = 18
    prop_kernel: int = 3
    preserve_input: bool = True
    prior: str = "none"
    correction: bool = True
    guidance: str = "deep"
    init: str | None = None
    init_skip: list[str] = field(default_factory=list)
    sensor_patterns: float = 0.0
    height: int = 240
    width: int = 1216
    top_crop: int = 100
    scale: float = 1.0
    cameras: list[int] = field(default_factory=lambda: [2, 3])
    max_depth: float = 90.0
    steps: int | None = None
    epochs: float | None = None
    init_weight: float = 0.0
    batch_size: int = 4
    lr: float = 1e-3
    weight_decay: float = 0.0
    export_height: int = 352
    export_width: int = 1216

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if self.prior not in COMPLETION_PRIORS:
            raise ValueError(f"prior must be one of {COMPLETION_PRIORS}, got {self.prior!r}")
        if not self.correction and self.prior == "none":
            raise ValueError("--no-correction needs --prior (the propagation starts from the in-fill)")


def model_config(args: CompletionTrainOptions) -> dict[str, Any]:
    config: dict[str, Any] = dict(
        height=args.export_height, width=args.export_width, iterations=args.iterations,
        prop_kernel=args.prop_kernel, preserve_input=args.preserve_input, max_depth=args.max_depth,
    )
    if args.width_base:
        config["width_base"] = args.width_base
    if args.prior != "none":
        config["prior"] = args.prior
    if not args.correction:
        config["correction"] = False
    if args.guidance != "deep":
        config["guidance"] = args.guidance
    return config


def make_loss(init_weight: float = 0.0) -> Any:
    """NLSPN's loss on the final depth; `init_weight` > 0 also supervises the initial depth (our option: it
    matters where the propagation cannot reach, e.g. above the LiDAR's field of view on dense synthetic truth).

    With a prior_depth input the errors are divided by each sample's depth scale (the in-fill's mean, the scale
    the network itself sees), so a room 2 m deep weighs as much as a street 40 m deep."""
    if init_weight < 0:
        raise ValueError(f"init_weight must be >= 0, got {init_weight}")

    def loss_fn(net: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        prior = batch.get("prior_depth")
        out = net.forward_train(batch["image"], batch["sparse_depth"], prior)
        gt = batch["depth"]
        scale: Tensor | float = 1.0
        if prior is not None:
            scale = prior.mean(dim=(1, 2, 3), keepdim=True).clamp_min(0.05)
            # a crop without one measurement has no scale to read (its in-fill is all zeros): left out
            gt = gt * (prior.amax(dim=(1, 2, 3), keepdim=True) > 0)
        gt = gt / scale
        loss, l1, l2 = l1_l2_loss(out["depth"].float() / scale, gt)
        init_loss, l1_init, _ = l1_l2_loss(out["init_depth"].float() / scale, gt)
        if init_weight > 0:
            loss = loss + init_weight * init_loss
        scalars = {"l1": float(l1.detach()), "l2": float(l2.detach()), "l1_init": float(l1_init.detach())}
        if prior is not None:  # the same L1 for the in-fill with the measurements kept: what the network must beat
            sparse = batch["sparse_depth"]
            scalars["l1_prior"] = float(l1_l2_loss(torch.where(sparse > 0, sparse, prior) / scale, gt)[1])
        return loss, scalars

    return loss_fn


def build_trainer(args: CompletionTrainOptions) -> Trainer:
    from ..models.registry import build_model

    model = build_model(args.arch, **model_config(args))
    fresh: list[str] = []
    if args.init:
        from .checkpoint import warm_start

        fresh = warm_start(args.init, model, skip=args.init_skip)
    dataset = CompletionDriveDataset(
        args.data, args.height, args.width, top_crop=args.top_crop, scale=args.scale, cameras=args.cameras,
        max_depth=args.max_depth, depth_root=args.depth_root,
        sensor_patterns=args.sensor_patterns, prior=args.prior,
    )
    if len(dataset) == 0:
        raise ValueError(f"no frames with ground truth (proj_depth/groundtruth) in {args.data}")
    steps = args.steps if args.steps is not None else 2000
    if args.epochs is not None:
        world = int(__import__("os").environ.get("WORLD_SIZE", "1"))
        steps = max(1, math.ceil(args.epochs * len(dataset) / (args.batch_size * world)))
    cfg = args.train_config(
        args.out, steps, args.batch_size, args.lr, weight_decay=args.weight_decay,
        lr_milestones=(int(steps * 0.6), int(steps * 0.85)), lr_gamma=0.3, grad_clip=5.0,
    )
    meta = {
        "data": [str(d) for d in args.data], "frames": len(dataset), "crop": [args.height, args.width],
        "top_crop": args.top_crop, "scale": args.scale,
        "sensor_patterns": args.sensor_patterns, "init": args.init, "init_fresh": fresh,
        "command": " ".join(["depth-perception", *sys.argv[1:]]),
    }
    return Trainer(model, make_loss(args.init_weight), dataset, cfg, {"name": args.arch, "config": model.config},
                   extra_meta=meta)
