"""A tiny test network with the deploy-module protocol, standing in for the mono, completion or stereo engine I/O.

`build_model("tiny_depth", kind="mono" | "completion" | "stereo", height=32, width=64, ...)`: a few convolutions,
fast enough for tests and benchmarks on one CPU core; it learns nothing useful and says so in its I/O description.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .registry import register_model

KINDS = ("mono", "completion", "stereo")
# mean/std normalization inside the graph, as every engine does (inputs are RGB / 255)
_MEAN = (0.45, 0.45, 0.45)
_STD = (0.225, 0.225, 0.225)


def _out(name: str, shape: list[int], units: str, description: str) -> dict[str, Any]:
    return {"name": name, "shape": shape, "dtype": "float32", "units": units, "description": description}


def _in(name: str, shape: list[int], description: str) -> dict[str, Any]:
    return {"name": name, "shape": shape, "dtype": "float32", "description": description}


class TinyDepthNet(nn.Module):
    """Conv-ReLU-Conv body; the head turns a sigmoid into depth within [min_depth, max_depth] (inverse-depth space)."""

    def __init__(
        self,
        kind: str = "mono",
        height: int = 32,
        width: int = 64,
        channels: int = 8,
        views: int = 1,
        min_depth: float = 0.5,
        max_depth: float = 80.0,
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if height < 4 or width < 4:
            raise ValueError(f"height and width must be >= 4, got {height}x{width}")
        if channels < 1 or views < 1:
            raise ValueError(f"channels and views must be >= 1, got channels={channels} views={views}")
        if not 0 < min_depth < max_depth:
            raise ValueError(f"need 0 < min_depth < max_depth, got min_depth={min_depth} max_depth={max_depth}")
        self.kind = kind
        self.config: dict[str, Any] = dict(kind=kind, height=height, width=width, channels=channels, views=views,
                                           min_depth=min_depth, max_depth=max_depth)
        self.height, self.width, self.views = int(height), int(width), int(views)
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        in_ch = {"mono": 3, "completion": 4, "stereo": 6}[kind]
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, channels, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True),
        )
        head_ch = {"mono": 1, "completion": 2, "stereo": 5}[kind]
        self.head = nn.Conv2d(channels, head_ch, 3, padding=1)

    def _depth(self, logit: Tensor) -> tuple[Tensor, Tensor]:
        disp = torch.sigmoid(logit)
        lo, hi = 1.0 / self.max_depth, 1.0 / self.min_depth
        return 1.0 / (lo + (hi - lo) * disp), disp

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        image = (inputs[0] - self.mean) / self.std
        if self.kind == "mono":
            depth, disp = self._depth(self.head(self.body(image)))
            return depth, disp
        if self.kind == "completion":
            sparse = inputs[1]
            out = self.head(self.body(torch.cat([image, sparse / self.max_depth], 1)))
            depth, _ = self._depth(out[:, :1])
            # valid measurements pass through, as NLSPN re-imposes them
            depth = torch.where(sparse > 0, sparse, depth)
            return depth, torch.sigmoid(out[:, 1:2])
        sources, intrinsics, poses = inputs[1], inputs[2], inputs[3]
        src = (sources.mean(1) - self.mean) / self.std
        out = self.head(self.body(torch.cat([image, src], 1)))
        # scale by focal length x baseline so the geometry inputs take part in the graph
        fb = (intrinsics[:, 0, 0] * poses[:, :, 0, 3].abs().mean(1)).view(-1, 1, 1, 1) / self.width
        depth, _ = self._depth(out[:, :1] + torch.log1p(fb))
        normal = out[:, 2:5] / (out[:, 2:5].square().sum(1, keepdim=True).sqrt() + 1e-6)
        return depth, torch.sigmoid(out[:, 1:2]), normal

    # -- deploy-module protocol -----------------------------------------------------------------------------
    def io_spec(self) -> dict[str, Any]:
        h, w, v = self.height, self.width, self.views
        depth = _out("depth", [1, 1, h, w], "m", "depth (tiny test network)")
        spec: dict[str, Any] = {"depth_range": [self.min_depth, self.max_depth], "metric": self.kind != "mono"}
        if self.kind == "mono":
            spec["inputs"] = [_in("image", [1, 3, h, w], "RGB / 255")]
            spec["outputs"] = [depth, _out("disparity", [1, 1, h, w], "1", "sigmoid disparity")]
        elif self.kind == "completion":
            spec["inputs"] = [_in("image", [1, 3, h, w], "RGB / 255"),
                              _in("sparse_depth", [1, 1, h, w], "sparse depth in metres, 0 = none")]
            spec["outputs"] = [depth, _out("confidence", [1, 1, h, w], "1", "confidence")]
        else:
            spec["inputs"] = [_in("reference", [1, 3, h, w], "reference RGB / 255"),
                              _in("sources", [1, v, 3, h, w], "source views RGB / 255"),
                              _in("intrinsics", [1, 3, 3], "K at the input resolution"),
                              _in("poses", [1, v, 4, 4], "T_src_ref per source view")]
            spec["outputs"] = [depth, _out("confidence", [1, 1, h, w], "1", "confidence"),
                               _out("normal", [1, 3, h, w], "1", "unit normal, camera optical frame")]
        return spec

    def example_inputs(self) -> tuple[Tensor, ...]:
        g = torch.Generator().manual_seed(0)
        h, w, v = self.height, self.width, self.views
        image = torch.rand(1, 3, h, w, generator=g)
        if self.kind == "mono":
            return (image,)
        if self.kind == "completion":
            depth = 2.0 + 20.0 * torch.rand(1, 1, h, w, generator=g)
            keep = torch.rand(1, 1, h, w, generator=g) < 0.1
            return image, torch.where(keep, depth, torch.zeros_like(depth))
        sources = torch.roll(image, shifts=-2, dims=-1).unsqueeze(1).repeat(1, v, 1, 1, 1)
        f = 0.6 * w
        K = torch.tensor([[[f, 0.0, w / 2 - 0.5], [0.0, f, h / 2 - 0.5], [0.0, 0.0, 1.0]]])
        T = torch.eye(4).repeat(1, v, 1, 1)
        T[:, :, 0, 3] = -0.54
        return image, sources, K, T


@register_model("tiny_depth")
def build_tiny_depth(**config: Any) -> TinyDepthNet:
    return TinyDepthNet(**config)
