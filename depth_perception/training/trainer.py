"""The one training loop every engine uses: seed, progress bar, scalar log, resumable checkpoints, DDP.

Usage::

    trainer = Trainer(model, loss_fn, dataset, TrainConfig(out_dir="runs/mono", steps=2000),
                      model_config={"name": "mono_resnet", "config": {...}})
    history = trainer.fit()

`loss_fn(model, batch) -> (loss, scalars)` gets the bare model (not the DDP wrapper) and a batch dict of
tensors already on the device. Under `torchrun` (WORLD_SIZE > 1) the loop joins the process group
(gloo on CPU, nccl on CUDA), shards the data with a DistributedSampler and averages gradients; only
rank 0 writes. Re-running with the same out_dir resumes from its checkpoint.
"""
from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..utils import progress
from .checkpoint import META, load_checkpoint, save_checkpoint

LossFn = Callable[[nn.Module, dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, float]]]


PROBE_SHOWN = ("pose_cos", "pose_scale", "depth_scale")  # probe figures the progress bar shows beside the loss


@dataclass
class TrainConfig:
    out_dir: str
    steps: int = 1000
    batch_size: int = 4
    lr: float = 1e-4
    weight_decay: float = 0.0
    num_workers: int = 0
    seed: int = 0
    log_every: int = 10
    ckpt_every: int = 500
    device: str = "auto"
    lr_milestones: tuple[int, ...] = field(default_factory=tuple)
    lr_gamma: float = 0.1
    grad_clip: float = 0.0
    resume: bool = True
    amp: bool = False
    max_seconds: float = 0.0  # wall-clock budget: stop, checkpoint and return early (0 = none)
    probe_every: int = 0  # steps between calls of the Trainer's `probe` (0 = never; the last step always)

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        self.lr_milestones = tuple(int(m) for m in self.lr_milestones)


@dataclass(kw_only=True)
class LoopOptions:
    """The loop options every `train <kind>` shares; each kind's options dataclass extends it."""

    workers: int = 2
    device: str = "auto"
    seed: int = 0
    amp: bool = False  # mixed precision on CUDA
    log_every: int = 10
    ckpt_every: int = 250
    max_minutes: float = 0.0  # wall-clock budget: stop early with a checkpoint (0 = none)

    def train_config(self, out_dir: str, steps: int, batch_size: int, lr: float, **extra: Any) -> TrainConfig:
        return TrainConfig(
            out_dir=out_dir, steps=steps, batch_size=batch_size, lr=lr, num_workers=self.workers, seed=self.seed,
            log_every=self.log_every, ckpt_every=self.ckpt_every, device=self.device,
            max_seconds=60.0 * self.max_minutes, amp=self.amp, **extra,
        )


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available")
    return torch.device(name)


class _TrainStep(nn.Module):
    """Wraps model + loss so DistributedDataParallel sees the whole step as one forward()."""

    def __init__(self, model: nn.Module, loss_fn: LossFn) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        return self.loss_fn(self.model, batch)


def _to_device(batch: Any, device: torch.device) -> Any:
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


class Trainer:
    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        dataset: Dataset,
        config: TrainConfig,
        model_config: dict[str, Any],
        extra_meta: dict[str, Any] | None = None,
        parameters: list[dict[str, Any]] | None = None,
        probe: Callable[[nn.Module], dict[str, float]] | None = None,
    ) -> None:
        if len(dataset) == 0:
            raise ValueError("the training dataset is empty: check --data")
        self.model = model
        self.loss_fn = loss_fn
        self.dataset = dataset
        self.config = config
        self.model_config = model_config
        self.extra_meta = extra_meta or {}
        self.parameters = parameters
        # probe(model) -> figures measured on the model as it trains (e.g. the pose probe), merged into the scalar
        # log every `probe_every` steps and shown in the progress bar; rank 0 only
        self.probe = probe
        self._probed: dict[str, float] = {}
        self.stopped_early: int | None = None  # the step where max_seconds ran out
        self._clock = 0  # where the LR schedule stands: the step, or further on when time runs out first
        self.out_dir = Path(config.out_dir)
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def _setup_distributed(self, device: torch.device) -> None:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")

    def _lr_at(self, step: int) -> float:
        passed = sum(1 for m in self.config.lr_milestones if step >= m)
        return self.config.lr * (self.config.lr_gamma**passed)

    def fit(self) -> list[dict[str, float]]:
        cfg = self.config
        seed_everything(cfg.seed + self.rank)
        device = resolve_device(cfg.device)
        if self.world_size > 1:
            if device.type == "cuda":
                local = int(os.environ.get("LOCAL_RANK", "0"))
                device = torch.device("cuda", local)
                torch.cuda.set_device(device)
            self._setup_distributed(device)
        if device.type == "cuda":  # fixed crop sizes: let cuDNN pick its fastest kernels; TF32 matmuls
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.model.to(device)
        params = self.parameters or [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

        start_step = 0
        history: list[dict[str, float]] = []
        scalars_path = self.out_dir / "scalars.jsonl"
        if cfg.resume and (self.out_dir / META).exists():
            meta = load_checkpoint(self.out_dir, self.model, optimizer)
            start_step = int(meta["step"])
            self._clock = max(start_step, int(meta.get("schedule_step", start_step)))
            if scalars_path.exists():
                history = [json.loads(line) for line in scalars_path.read_text().splitlines() if line.strip()]
                history = [h for h in history if h.get("step", 0) <= start_step]
        elif self.is_main and scalars_path.exists():
            scalars_path.unlink()

        step_module: nn.Module = _TrainStep(self.model, self.loss_fn)
        sampler = None
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel
            from torch.utils.data.distributed import DistributedSampler

            step_module = DistributedDataParallel(
                step_module, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=True,
            )
            sampler = DistributedSampler(self.dataset, shuffle=True, seed=cfg.seed, drop_last=True)
        generator = torch.Generator().manual_seed(cfg.seed)
        loader = DataLoader(
            self.dataset, batch_size=cfg.batch_size, shuffle=sampler is None, sampler=sampler,
            num_workers=cfg.num_workers, drop_last=len(self.dataset) >= cfg.batch_size,
            pin_memory=device.type == "cuda", generator=generator,
            persistent_workers=cfg.num_workers > 0,
        )
        scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp and device.type == "cuda")

        self.model.train()
        step = start_step
        epoch = 0
        bar = progress(range(start_step, cfg.steps), desc="train", total=cfg.steps - start_step) if self.is_main \
            else range(start_step, cfg.steps)
        bar_iter = iter(bar)
        running: dict[str, float] = {}
        count = 0
        t0 = time.perf_counter()
        clock0 = max(start_step, self._clock)
        if len(loader) == 0:
            raise ValueError(f"no batch of {cfg.batch_size} fits in the {len(self.dataset)} training samples "
                             f"shared by {self.world_size} process(es): lower --batch-size or add data")
        if self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        log_file = open(scalars_path, "a") if self.is_main else None
        try:
            while step < cfg.steps:
                if sampler is not None:
                    sampler.set_epoch(epoch)
                for batch in loader:
                    if step >= cfg.steps:
                        break
                    # Under a time budget the schedule follows whichever runs out first, steps or seconds; a
                    # resumed run spreads what is left of the schedule over its own budget.
                    clock = max(step, self._clock)
                    if cfg.max_seconds > 0:
                        ahead = (cfg.steps - clock0) * (time.perf_counter() - t0) / cfg.max_seconds
                        clock = max(clock, clock0 + int(ahead))
                        if self.world_size > 1:  # every replica must take the same learning rate
                            clock = self._agree_max(clock, device)
                    self._clock = clock
                    lr = self._lr_at(clock)
                    for group in optimizer.param_groups:
                        group["lr"] = lr * group.get("lr_scale", 1.0)
                    batch = _to_device(batch, device)
                    with torch.autocast(device.type, enabled=cfg.amp and device.type == "cuda"):
                        loss, scalars = step_module(batch)
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"loss became {loss.item()} at step {step}")
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    if cfg.grad_clip > 0:
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(params if isinstance(params[0], torch.Tensor)
                                                       else self.model.parameters(), cfg.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                    step += 1
                    next(bar_iter, None)
                    running["loss"] = running.get("loss", 0.0) + float(loss.detach())
                    for k, v in scalars.items():
                        running[k] = running.get(k, 0.0) + float(v)
                    count += 1
                    probe_due = (self.probe is not None and self.is_main and cfg.probe_every > 0
                                 and (step % cfg.probe_every == 0 or step == cfg.steps))
                    if step % cfg.log_every == 0 or step == cfg.steps or probe_due:
                        row = {k: v / count for k, v in running.items()}
                        row.update(step=step, lr=lr, seconds=time.perf_counter() - t0)
                        if probe_due:
                            assert self.probe is not None
                            probed = self.probe(self.model)
                            row.update(probed)
                            self._probed = probed
                        history.append(row)
                        if log_file is not None:
                            log_file.write(json.dumps(row) + "\n")
                            log_file.flush()
                            if hasattr(bar, "set_postfix"):
                                shown = {"loss": f"{row['loss']:.4f}"}
                                shown.update({k: f"{v:.3g}" for k, v in self._probed.items()
                                              if k in PROBE_SHOWN})
                                bar.set_postfix(**shown)
                        running, count = {}, 0
                    out_of_time = (cfg.max_seconds > 0 and step < cfg.steps
                                   and time.perf_counter() - t0 > cfg.max_seconds)
                    if self.world_size > 1 and cfg.max_seconds > 0:
                        out_of_time = self._agree(out_of_time, device)
                    if self.is_main and (step % cfg.ckpt_every == 0 or step == cfg.steps or out_of_time):
                        self._save(optimizer, step)
                    if out_of_time:
                        self.stopped_early = step
                        break
                if self.stopped_early is not None:
                    break
                epoch += 1
        finally:
            if log_file is not None:
                log_file.close()
            if hasattr(bar, "close"):
                bar.close()
            if self.is_main and self.stopped_early is not None:
                print(f"train: time budget of {cfg.max_seconds:.0f} s spent; stopped at step {self.stopped_early} "
                      f"of {cfg.steps} (checkpoint saved; re-run to resume)", flush=True)
            if self.world_size > 1:
                import torch.distributed as dist

                if dist.is_initialized():
                    dist.barrier()
                    dist.destroy_process_group()
        return history

    @staticmethod
    def _agree_max(value: int, device: torch.device) -> int:
        """The largest of every rank's value, on every rank."""
        import torch.distributed as dist

        t = torch.tensor([float(value)], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t.item())

    def _agree(self, flag: bool, device: torch.device) -> bool:
        """Every rank stops at the same step when any one runs out of time."""
        return self._agree_max(int(flag), device) > 0

    def _save(self, optimizer: torch.optim.Optimizer, step: int) -> None:
        meta = {
            "model": self.model_config,
            "train_config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self.config).items()},
            "world_size": self.world_size,
            "schedule_step": max(self._clock, step),
            **self.extra_meta,
        }
        save_checkpoint(self.out_dir, self.model, optimizer, step, meta)
