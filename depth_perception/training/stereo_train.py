"""`depth-perception train stereo`: train the DPSNet + NAS plane-sweep network on KITTI-layout drives.

Two stages, as in "Normal Assisted Stereo Depth Estimation": stage 1 trains depth (coarse and
context-aggregated cost volumes) and the normal branch; stage 2 starts from stage 1 (`--init`), freezes it
and trains the consistency module with the depth-normal consistency loss plus the depth loss.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from ..models.stereo import DPSNet
from .stereo_data import StereoDriveDataset
from .stereo_losses import depth_normal_consistency_loss, inverse_depth_loss, normal_loss
from .trainer import LoopOptions, Trainer

COARSE_WEIGHT = 0.7  # DPSNet supervises the volume before context aggregation too
NORMAL_WEIGHT = 1.0
CONSISTENCY_WEIGHT = 0.5


@dataclass(kw_only=True)
class StereoTrainOptions(LoopOptions):
    """What `train stereo` trains (its command line, one field per option; help in commands/)."""

    data: list[str]
    out: str
    stage: int = 1
    init: str | None = None
    steps: int = 2000
    batch_size: int = 4
    lr: float = 1e-3
    height: int = 192
    width: int = 640
    planes: int = 64
    views: int = 1
    min_depth: float = 1.0
    max_depth: float = 80.0

    def __post_init__(self) -> None:
        if self.stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {self.stage}")


def make_loss(model: DPSNet, stage: int):
    inv_step = float(model.inv_depths[1] - model.inv_depths[0])
    max_depth = model.max_depth

    def loss_fn(net: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        if stage == 2:  # frozen stage-1 parts keep their batch-norm statistics
            net.eval()
            net.refine.train()
        out = net.forward_train(batch["reference"], batch["sources"], batch["intrinsics"], batch["poses"])
        gt = batch["depth"]
        if stage == 1:
            l_depth = inverse_depth_loss(out["inv_depth_stage1"], gt, inv_step, max_depth)
            l_coarse = inverse_depth_loss(out["inv_depth_coarse"], gt, inv_step, max_depth)
            l_normal = normal_loss(out["normal"], batch["normal"])
            loss = l_depth + COARSE_WEIGHT * l_coarse + NORMAL_WEIGHT * l_normal
            scalars = {"depth": l_depth, "coarse": l_coarse, "normal": l_normal}
            return loss, {k: float(v.detach()) for k, v in scalars.items()}
        l_depth = inverse_depth_loss(out["inv_depth"], gt, inv_step, max_depth)
        l_cons = depth_normal_consistency_loss(out["inv_depth"], out["normal"].detach(), batch["intrinsics"])
        loss = l_depth + CONSISTENCY_WEIGHT * l_cons
        return loss, {"depth": float(l_depth.detach()), "consistency": float(l_cons.detach())}

    return loss_fn


def build_trainer(args: StereoTrainOptions) -> Trainer:
    from ..training.checkpoint import load_weights, read_meta

    config: dict[str, Any] = dict(
        height=args.height, width=args.width, planes=args.planes, min_depth=args.min_depth,
        max_depth=args.max_depth, views=args.views,
    )
    if args.stage == 2:
        if not args.init:
            raise ValueError("--stage 2 needs --init, the stage-1 checkpoint folder")
        config = dict(read_meta(args.init)["model"]["config"])
    model = DPSNet(**config)
    if args.stage == 2 and not (Path(args.out) / "checkpoint.json").exists():
        load_weights(args.init, model)
    dataset = StereoDriveDataset(args.data, model.height, model.width, views=model.views, max_depth=model.max_depth)
    parameters = None
    if args.stage == 2:
        for p in model.parameters():
            p.requires_grad_(False)
        for p in model.refine.parameters():
            p.requires_grad_(True)
        parameters = [{"params": list(model.refine.parameters())}]
    cfg = args.train_config(args.out, args.steps, args.batch_size, args.lr,
                            lr_milestones=(int(args.steps * 0.75),), grad_clip=5.0)
    meta = {"stage": args.stage, "data": [str(d) for d in args.data], "init": args.init}
    return Trainer(model, make_loss(model, args.stage), dataset, cfg,
                   {"name": "stereo_dpsnet", "config": model.config}, extra_meta=meta, parameters=parameters)
