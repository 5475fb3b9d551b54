"""`depth-perception train stereo`: train a stereo engine on KITTI-layout drives.

`model="dpsnet"`: the DPSNet + NAS plane-sweep network, in two stages as in "Normal Assisted Stereo Depth
Estimation": stage 1 trains depth (coarse and context-aggregated cost volumes) and the normal branch; stage 2
starts from stage 1 (`--init`), freezes it and trains the consistency module with the depth-normal consistency
loss plus the depth loss.

`model="refine"`: the refinement of the classical sweep (`models.stereo_refine`), one stage: L1 on disparity
divided by the prior's mean disparity (range-blind, as the network sees it), plus a confidence head trained to
say where the disparity is within 1 px. The prior function (the classical sweep) comes from the caller.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.stereo import DPSNet
from ..models.stereo_refine import StereoRefine
from .stereo_data import StereoDriveDataset
from .stereo_losses import depth_normal_consistency_loss, inverse_depth_loss, normal_loss
from .stereo_refine_data import PriorFn, StereoRefineDataset
from .trainer import LoopOptions, Trainer

COARSE_WEIGHT = 0.7  # DPSNet supervises the volume before context aggregation too
NORMAL_WEIGHT = 1.0
CONSISTENCY_WEIGHT = 0.5


@dataclass(kw_only=True)
class StereoTrainOptions(LoopOptions):
    """What `train stereo` trains (its command line, one field per option; help in commands/)."""

    data: list[str]
    out: str
    model: str = "dpsnet"  # or "refine"
    stage: int = 1
    init: str | None = None
    steps: int = 2000
    batch_size: int = 4
    lr: float = 1e-3
    height: int = 192
    width: int = 640
    planes: int = 64
    views: int = 1
    min_depth: float | None = None  # dpsnet: 1 m, refine: 0.3 m
    max_depth: float | None = None  # dpsnet: 80 m, refine: 200 m
    frame_step: int = 1  # refine: every n-th frame (each one is swept once for its prior)
    base: int = 16  # refine: the network's base width
    correct: str = "holes"  # refine: only the sweep's "holes", or "all" pixels
    loss: str = "log"  # refine: see refine_loss
    lookup: int = 0  # refine: radius in px of the local photometric cost around the prior (0 = none)
    hole_fill: str = "rows"  # refine: how the prior fills the sweep's holes (geometry.infill.STEREO_HOLE_FILLS)
    prior_edge_snap: bool = False  # refine: the sweep's steps snapped onto colour edges before the fill

    def __post_init__(self) -> None:
        if self.model not in ("dpsnet", "refine"):
            raise ValueError(f"model must be 'dpsnet' or 'refine', got {self.model!r}")
        if self.stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {self.stage}")
        if self.loss not in REFINE_LOSSES:
            raise ValueError(f"loss must be one of {REFINE_LOSSES}, got {self.loss!r}")
        if self.model == "refine" and self.stage != 1:
            raise ValueError("the refinement network trains in one stage (no --stage 2)")
        if self.model == "refine" and self.height % 8:
            raise ValueError(f"height must be a multiple of 8, got {self.height}")
        from ..models.stereo_refine import DEPTH_RANGE

        near, far = DEPTH_RANGE if self.model == "refine" else (1.0, 80.0)
        self.min_depth = near if self.min_depth is None else self.min_depth
        self.max_depth = far if self.max_depth is None else self.max_depth


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


CONFIDENCE_WEIGHT = 0.1
REFINE_LOSSES = ("l1", "log")


def refine_loss(net: nn.Module, batch: dict[str, Tensor], kind: str = "l1") -> tuple[Tensor, dict[str, float]]:
    """`l1`: L1 on disparity / the prior's mean disparity. `log`: log(1 + |error| / 1 px), robust: a pixel far
    off in either direction costs little more than one a few pixels off, so the network is not pulled to the
    mean of a foreground and a background it cannot tell apart (that mean is wrong for both, as bad-3 counts)."""
    out = net.forward_train(batch["reference"], batch["sources"], batch["intrinsics"], batch["poses"],
                            batch["prior_depth"], batch["prior_confidence"])
    gt = batch["depth"]
    valid = gt > 0
    if not bool(valid.any()):
        zero = out["disparity"].sum() * 0.0
        return zero, {"l1": 0.0}
    gt_disp = out["fxb"] / gt.clamp_min(1e-3)
    err = (out["disparity"] - gt_disp).abs()
    prior_err = (out["prior_disparity"] - gt_disp).abs()
    l1 = (err / out["scale"])[valid].mean()
    within = (err < 1.0).to(err.dtype).detach()
    l_conf = F.binary_cross_entropy_with_logits(out["confidence_logits"][valid], within[valid])
    l_main = l1 if kind == "l1" else torch.log1p(err[valid]).mean()
    loss = l_main + CONFIDENCE_WEIGHT * l_conf
    with torch.no_grad():  # the figures the network must beat: its own input's
        scalars = {"l1": float(l1), "l1_prior": float((prior_err / out["scale"])[valid].mean()),
                   "bad3": float((err[valid] > 3.0).float().mean()),
                   "bad3_prior": float((prior_err[valid] > 3.0).float().mean()), "conf": float(l_conf)}
    return loss, scalars


def build_refine_trainer(args: StereoTrainOptions, prior_fn: PriorFn, prior_key: str = "") -> Trainer:
    """The refinement's trainer; `prior_fn` sweeps a pair (the classical sweep), `prior_key` names its settings
    (a change invalidates the cached priors)."""
    model = StereoRefine(height=args.height, width=args.width, base=args.base, min_depth=args.min_depth,
                         max_depth=args.max_depth, correct=args.correct, lookup=args.lookup,
                         hole_fill=args.hole_fill, prior_edge_snap=args.prior_edge_snap)
    dataset = StereoRefineDataset(args.data, args.height, prior_fn, max_depth=args.max_depth,
                                  frame_step=args.frame_step, cache=Path(args.out) / "priors.npz",
                                  prior_key=prior_key, hole_fill=args.hole_fill,
                                  edge_snap=args.prior_edge_snap)
    cfg = args.train_config(args.out, args.steps, args.batch_size, args.lr,
                            lr_milestones=(int(args.steps * 0.75),), grad_clip=5.0)
    meta = {"data": [str(d) for d in args.data], "prior": prior_key, "init": args.init, "loss": args.loss}
    loss = functools.partial(refine_loss, kind=args.loss)
    trainer = Trainer(model, loss, dataset, cfg, {"name": "stereo_refine", "config": model.config},
                      extra_meta=meta)
    if args.init and not (Path(args.out) / "checkpoint.json").exists():
        from .checkpoint import warm_start

        warm_start(args.init, model)  # every tensor whose name and shape match (a new input stem starts fresh)
    return trainer


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
