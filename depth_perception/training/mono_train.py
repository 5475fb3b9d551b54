"""`depth-perception train mono`: train the monocular engine (self-supervised, mono+stereo, or LiDAR-supervised).

Modes: `mono` (monodepth2 from video: frames t-1, t, t+1 with a pose network; depth is relative),
`mono+stereo` (adds the other camera at t with the calibrated baseline: metric scale), `supervised` (projected
LiDAR with Eigen's scale-invariant loss; metric). Architectures: `narrow` (the shipped embedded default),
`resnet18`, `resnet34`, `eigen` (supervised only). At the end, `--eval-data` drives are scored with the
monodepth2 protocol and `--export` writes the ONNX engine with its sidecar.
"""
from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..models.mono import ARCHITECTURES, INIT_DEPTH, EigenNet, MonoDepthNet, disp_to_depth, pose_to_matrix
from .mono_data import SUPERVISION, MonoDataset
from .mono_losses import (
    SMOOTHNESS_WEIGHT,
    min_reprojection_loss,
    scale_invariant_log_loss,
    smoothness_loss,
    upsample_to,
    warp_source_to_target,
)
from .pose_probe import PoseProbe
from .trainer import LoopOptions, Trainer

MODES = ("mono", "mono+stereo", "supervised")


@dataclass(kw_only=True)
class MonoTrainOptions(LoopOptions):
    """What `train mono` trains (its command line, one field per option; help in commands/)."""

    data: list[str]
    out: str
    mode: str = "mono+stereo"
    arch: str = "narrow"
    split: str | None = None
    height: int = 192
    width: int = 640
    steps: int | None = None
    epochs: int | None = None
    batch_size: int = 12
    lr: float = 1e-4
    min_depth: float = 0.1
    max_depth: float = 100.0
    augment: bool = True
    # the pose probe (training.pose_probe): every probe_every steps, on probe_pairs pairs of probe_data (default:
    # the synthetic drives among `data`); 0 = off. Modes with a pose network only.
    probe_every: int = 50
    probe_pairs: int = 12
    probe_data: list[str] | None = None
    # recipe choices (issue 18's ablations; the defaults are the shipped recipe)
    decoder_padding: str = "zeros"  # or "reflect" (monodepth2)
    bn_init: str = "zero"  # last BatchNorm of each residual block at zero, or "standard" (torchvision, monodepth2)
    init_depth: float = INIT_DEPTH  # metres where the depth heads start; 0 = monodepth2's sigmoid midpoint
    pose_width: int | None = None  # the pose encoder's base width (default: the depth encoder's; 64 = ResNet-18)
    min_motion: float = 0.0  # static-frame removal: leave out samples whose camera moves less (m) to a neighbour
    init: str | None = None  # warm start: a checkpoint folder or an engine's .safetensors (matching tensors copied)
    supervision: str = "auto"  # --mode supervised: "auto" (LiDAR, else groundtruth), "lidar" or "groundtruth"

    def __post_init__(self) -> None:
        if self.bn_init not in ("zero", "standard"):
            raise ValueError(f"--bn-init must be 'zero' or 'standard', got {self.bn_init!r}")
        if self.init_depth < 0 or self.min_motion < 0:
            raise ValueError(f"--init-depth and --min-motion must be >= 0, got {self.init_depth} and "
                             f"{self.min_motion}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.supervision not in SUPERVISION:
            raise ValueError(f"--supervision must be one of {SUPERVISION}, got {self.supervision!r}")
        if self.supervision != "auto" and self.mode != "supervised":
            raise ValueError(f"--supervision {self.supervision} needs --mode supervised (--mode {self.mode} learns "
                             "from the images alone)")
        if self.probe_every < 0 or self.probe_pairs < 1:
            raise ValueError(f"--probe-every must be >= 0 and --probe-pairs >= 1, got {self.probe_every} and "
                             f"{self.probe_pairs}")


# ----------------------------------------------------------------------------------------------------- losses


def _source_pose(net: MonoDepthNet, batch: dict[str, Tensor], f: int) -> Tensor:
    """T_source_target for temporal source f, monodepth2's ordering: the pair always runs forward in time."""
    assert net.pose is not None
    if f < 0:
        axisangle, translation = net.pose(batch[f"aug_{f}"], batch["aug_0"])
        return pose_to_matrix(axisangle, translation, invert=True)
    axisangle, translation = net.pose(batch["aug_0"], batch[f"aug_{f}"])
    return pose_to_matrix(axisangle, translation)


def make_loss(mode: str, frame_ids: tuple[int, ...] = (0, -1, 1)):
    """The Trainer's loss_fn for a mode: (net, batch) -> (loss, scalars)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    temporal = [f for f in frame_ids if f != 0]

    def supervised(net: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        gt = batch["depth_gt"]
        size = (gt.shape[-2], gt.shape[-1])
        if isinstance(net, EigenNet):
            out = net.train_forward(batch["aug_0"])
            terms = [scale_invariant_log_loss(torch.exp(upsample_to(out[k], size)), gt) for k in ("fine", "coarse")]
            loss = terms[0] + terms[1]
            return loss, {"si_fine": float(terms[0].detach()), "si_coarse": float(terms[1].detach())}
        disps = net.train_forward(batch["aug_0"])
        terms = [scale_invariant_log_loss(disp_to_depth(upsample_to(d, size), net.min_depth, net.max_depth)[1], gt)
                 for d in disps.values()]
        loss = sum(terms) / len(terms)
        return loss, {"si": float(terms[0].detach())}

    def self_supervised(net: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        assert isinstance(net, MonoDepthNet)
        target = batch["color_0"]
        size = (target.shape[-2], target.shape[-1])
        K = batch["K"]
        transforms = {str(f): _source_pose(net, batch, f) for f in temporal}
        if mode == "mono+stereo":
            transforms["s"] = batch["T_stereo"]
        sources = [batch[f"color_{k}"] for k in transforms]
        disps = net.train_forward(batch["aug_0"])
        total = target.new_zeros(())
        photo_0, smooth_0, automask_0 = 0.0, 0.0, 0.0
        for s, disp in disps.items():
            _, depth = disp_to_depth(upsample_to(disp, size), net.min_depth, net.max_depth)
            warped = [warp_source_to_target(src, depth, K, T)[0] for src, T in zip(sources, transforms.values(),
                                                                                    strict=True)]
            photo, automask = min_reprojection_loss(target, warped, sources)
            small = upsample_to(target, (disp.shape[-2], disp.shape[-1]))
            smooth = smoothness_loss(disp, small)
            total = total + photo + SMOOTHNESS_WEIGHT / (2**s) * smooth
            if s == 0:
                photo_0, smooth_0, automask_0 = float(photo.detach()), float(smooth.detach()), float(automask.mean())
        loss = total / len(disps)
        return loss, {"photometric": photo_0, "smoothness": smooth_0, "automask": automask_0}

    return supervised if mode == "supervised" else self_supervised


# ------------------------------------------------------------------------------------------------ the command


def build_model(arch: str, mode: str, height: int, width: int, min_depth: float, max_depth: float,
                **recipe: Any) -> nn.Module:
    """The network of `arch` for `mode`; `recipe`: MonoDepthNet's recipe choices (decoder_padding,
    zero_init_residual, init_depth, pose_width)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {sorted(ARCHITECTURES)}, got {arch!r}")
    name, preset = ARCHITECTURES[arch]
    if name == "mono_eigen":
        if mode != "supervised":
            raise ValueError(f"--arch eigen trains only with --mode supervised (Eigen's loss), got --mode {mode}")
        return EigenNet(height=height, width=width, min_depth=min_depth, max_depth=max_depth, **preset)
    return MonoDepthNet(height=height, width=width, min_depth=min_depth, max_depth=max_depth,
                        pose_net=mode != "supervised", **preset, **recipe)


def architecture_name(model: nn.Module) -> str:
    return "mono_eigen" if isinstance(model, EigenNet) else "mono_resnet"


def build_trainer(args: MonoTrainOptions) -> Trainer:
    from ..data.kitti import read_split

    recipe = dict(decoder_padding=args.decoder_padding, zero_init_residual=args.bn_init == "zero",
                  init_depth=args.init_depth or None, pose_width=args.pose_width)
    model = build_model(args.arch, args.mode, args.height, args.width, args.min_depth, args.max_depth, **recipe)
    fresh: list[str] = []
    if args.init:
        from .checkpoint import warm_start

        fresh = warm_start(args.init, model)  # an engine has no pose net: that starts fresh
    split = read_split(args.split) if args.split else None
    supervised = args.mode == "supervised"
    # supervision needs no neighbour frames: every frame is a sample, and stills (objects drives) are welcome
    dataset = MonoDataset(args.data, args.height, args.width, frame_ids=(0,) if supervised else (0, -1, 1),
                          stereo=args.mode == "mono+stereo", supervised=supervised, augment=args.augment,
                          split=split, min_motion=args.min_motion, supervision=args.supervision)
    if len(dataset) == 0:
        static = f" ({dataset.static_removed} left out as static by --min-motion)" if dataset.static_removed else ""
        need = "frames with depth" if supervised else "at least 3 frames"
        raise ValueError(f"no training samples in {args.data}: drives need {need}{static}")
    if dataset.static_removed:
        print(f"train mono: {dataset.static_removed} static samples left out (camera moves < {args.min_motion} m)",
              file=sys.stderr)
    if args.epochs is not None:
        if args.epochs < 1:
            raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
        steps = args.epochs * max(1, len(dataset) // args.batch_size)
    else:
        steps = 2000 if args.steps is None else args.steps
    probe = make_probe(args, model)
    cfg = args.train_config(args.out, steps, args.batch_size, args.lr, probe_every=args.probe_every,
                            lr_milestones=(int(steps * 0.75),))  # monodepth2: x0.1 for the last quarter
    meta = {"mode": args.mode, "arch": args.arch, "metric": args.mode != "mono",
            "data": [str(d) for d in args.data], "split": args.split, "samples": len(dataset),
            "supervision": args.supervision if supervised else None,
            "init": args.init, "init_fresh": fresh, "command": command_line()}
    name = architecture_name(model)
    return Trainer(model, make_loss(args.mode), dataset, cfg, {"name": name, "config": model.config},
                   extra_meta=meta, probe=probe)


def make_probe(args: MonoTrainOptions, model: nn.Module) -> PoseProbe | None:
    """The pose probe of a run whose network has a pose net: on `probe_data` (an error if it has no synthetic
    drive), else on the synthetic drives among the training data (none there: no probe, said once)."""
    if args.probe_every == 0 or getattr(model, "pose", None) is None:
        return None
    try:
        return PoseProbe.from_drives(args.probe_data or args.data, args.height, args.width, args.probe_pairs)
    except ValueError as exc:
        if args.probe_data:
            raise
        print(f"train mono: no pose probe ({exc})", file=sys.stderr)
        return None


def command_line() -> str:
    return "depth-perception " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else ""


def data_seeds(paths: list[str]) -> list[int]:
    """Seeds of the synthetic drives among `paths` (those with a synthetic/ folder), read back from their names:
    `data.synth` names seed S `<2011-09-26 + S // 10000 days>_drive_<S % 10000>`."""
    import datetime
    import re

    from .stereo_data import find_drives

    try:
        drives = find_drives(paths)
    except (FileNotFoundError, ValueError):
        return []
    seeds = set()
    for d in drives:
        m = re.fullmatch(r"(\d{4})_(\d{2})_(\d{2})_drive_(\d{4})_sync", d.name)
        if m is None or not (d / "synthetic").is_dir():
            continue
        days = (datetime.date(int(m[1]), int(m[2]), int(m[3])) - datetime.date(2011, 9, 26)).days
        seeds.add(days * 10000 + int(m[4]))
    return sorted(seeds)


def deploy_module(trained: nn.Module) -> nn.Module:
    """A fresh deploy-form copy of the trained network (no pose net), in eval mode on the CPU."""
    from ..models.registry import build_model as registry_build

    config = trained.deploy_config()
    module = registry_build(architecture_name(trained), **config)
    state = {k: v.detach().cpu() for k, v in trained.state_dict().items() if not k.startswith("pose.")}
    module.load_state_dict(state)
    return module.eval()
