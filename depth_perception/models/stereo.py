"""DPSNet plane-sweep stereo with the normal-assisted (NAS) branch and depth-normal consistency refinement.

Seeds: DPSNet (Im et al., ICLR 2019) as used by "Normal Assisted Stereo Depth Estimation" (Kusupati et al.,
CVPR 2020). SPP features (32 channels, 1/4 resolution) of the reference and source views; source features
warped onto L fronto-parallel planes (uniform in inverse depth) by homography, one 2-D grid_sample for all
planes (`geometry.plane_sweep`); concatenated 2C x L x h x w volume, 3-D CNN regularization (hourglass-lite),
averaged over source views; context-aware aggregation (a 2-D network on every slice with the reference
features, residual); bilinear upsampling of the slices, softmax over planes, soft-argmin in inverse depth.
The NAS branch joins the cost features with a world-coordinate volume, reduces the plane dimension with
strided 3-D convolutions, runs a dilated 2-D network (dilations 1, 2, 4, 6, 8, 1, 1) on each slice, sums and
normalises to a normal map. Stage 2 trains a small consistency module that refines the depth against the
normals under the depth-normal consistency loss (`training.stereo_losses`).

Every op exports to ONNX within TensorRT 8.5's parser (2-D GridSample only, closed-form intrinsics inverse).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..geometry.plane_sweep import (
    inv_intrinsics_torch,
    plane_homographies_torch,
    plane_inverse_depths_torch,
    scale_intrinsics_torch,
    warp_to_planes_torch,
)
from .registry import register_model

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def _conv2d(cin: int, cout: int, stride: int = 1, dilation: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _conv3d(cin: int, cout: int, stride: tuple[int, int, int] | int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv3d(cin, cout, 3, stride, padding=1, bias=False), nn.BatchNorm3d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class _ResBlock(nn.Module):
    def __init__(self, ch: int, dilation: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv2d(ch, ch, dilation=dilation), _conv2d(ch, ch, dilation=dilation, relu=False))

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x + self.body(x))


class SPPFeatures(nn.Module):
    """Spatial-pyramid-pooling feature extractor (PSMNet / DPSNet style, slimmed): RGB -> C channels at 1/4."""

    def __init__(self, out_ch: int = 32, base: int = 16, pools: tuple[int, ...] = (2, 4, 8)) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self.stem = nn.Sequential(_conv2d(3, base, stride=2), _conv2d(base, base), _ResBlock(base))
        self.down = nn.Sequential(_conv2d(base, 2 * base, stride=2), _ResBlock(2 * base), _ResBlock(2 * base, 2))
        self.pools = pools
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(2 * base, base // 2, 1, bias=False), nn.BatchNorm2d(base // 2), nn.ReLU(inplace=True)
            )
            for _ in pools
        )
        fused = 2 * base + len(pools) * (base // 2)
        self.fuse = nn.Sequential(_conv2d(fused, 2 * base), nn.Conv2d(2 * base, out_ch, 1, bias=False))

    def forward(self, image: Tensor) -> Tensor:
        x = (image - self.mean) / self.std
        x = self.down(self.stem(x))
        h, w = int(x.shape[-2]), int(x.shape[-1])
        parts = [x]
        for k, branch in zip(self.pools, self.branches, strict=True):
            p = branch(F.avg_pool2d(x, k, k))
            parts.append(F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False))
        return self.fuse(torch.cat(parts, 1))


class CostRegularization(nn.Module):
    """3-D CNN over the (2C, L, h, w) volume: two convolutions, one hourglass level, a 1-channel cost head."""

    def __init__(self, cin: int, ch: int) -> None:
        super().__init__()
        self.pre = nn.Sequential(_conv3d(cin, ch), _conv3d(ch, ch))
        self.down = nn.Sequential(_conv3d(ch, 2 * ch, stride=2), _conv3d(2 * ch, 2 * ch))
        self.up = nn.Sequential(nn.ConvTranspose3d(2 * ch, ch, 4, 2, 1, bias=False), nn.BatchNorm3d(ch))
        self.post = _conv3d(ch, ch)
        self.head = nn.Conv3d(ch, 1, 3, 1, 1)

    def forward(self, volume: Tensor) -> tuple[Tensor, Tensor]:
        x = self.pre(volume)
        x = self.post(F.relu(x + self.up(self.down(x))))
        return x, self.head(x)[:, 0]  # features (B, ch, L, h, w), cost (B, L, h, w)


class ContextAggregation(nn.Module):
    """DPSNet's context-aware cost aggregation: a 2-D network on every cost slice with the reference features.

    The first convolution is split into a cost part (per slice) and a feature part (computed once and
    broadcast over slices): the same function as convolving the concatenation, L times cheaper.
    """

    def __init__(self, feat_ch: int, ch: int) -> None:
        super().__init__()
        self.cost_in = nn.Conv2d(1, ch, 3, 1, 1, bias=False)
        self.feat_in = nn.Conv2d(feat_ch, ch, 3, 1, 1, bias=True)
        self.body = nn.Sequential(
            nn.ReLU(inplace=True), _conv2d(ch, ch, dilation=2), _conv2d(ch, ch, dilation=4), _conv2d(ch, ch),
            nn.Conv2d(ch, 1, 3, 1, 1),
        )

    def forward(self, cost: Tensor, ref_feat: Tensor) -> Tensor:
        b, L, h, w = cost.shape
        x = self.cost_in(cost.reshape(b * L, 1, h, w))
        f = self.feat_in(ref_feat)
        x = (x.reshape(b, L, -1, h, w) + f.unsqueeze(1)).reshape(b * L, -1, h, w)
        return cost + self.body(x).reshape(b, L, h, w)


class NormalBranch(nn.Module):
    """NAS normal estimation: cost features + world coordinates -> strided 3-D convs -> dilated 2-D net per slice."""

    DILATIONS = (1, 2, 4, 6, 8, 1, 1)

    def __init__(self, cost_ch: int, ch: int, reductions: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = cost_ch + 3
        for _ in range(reductions):
            layers.append(_conv3d(cin, ch, stride=(2, 1, 1)))
            cin = ch
        self.reduce = nn.Sequential(*layers)
        convs: list[nn.Module] = []
        for i, d in enumerate(self.DILATIONS):
            last = i == len(self.DILATIONS) - 1
            convs.append(nn.Conv2d(ch, 3, 3, 1, d, d) if last else _conv2d(ch, ch, dilation=d))
        self.slice_net = nn.Sequential(*convs)

    def forward(self, cost_feat: Tensor, world: Tensor) -> Tensor:
        x = self.reduce(torch.cat([cost_feat, world], 1))  # (B, ch, L', h, w)
        b, c, lr, h, w = x.shape
        x = x.transpose(1, 2).reshape(b * lr, c, h, w)
        n = self.slice_net(x).reshape(b, lr, 3, h, w).sum(1)
        return F.normalize(n, dim=1, eps=1e-6)


class ConsistencyRefine(nn.Module):
    """Stage-2 module: refine normalised inverse depth from (inverse depth, normal, confidence, image).

    Its last layer starts at zero, so until stage 2 trains it the refinement is the identity.
    """

    def __init__(self, ch: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(8, ch, 3, 1, 1), nn.ReLU(inplace=True),
            nn.Conv2d(ch, ch, 3, 1, 2, 2), nn.ReLU(inplace=True),
            nn.Conv2d(ch, ch, 3, 1, 4, 4), nn.ReLU(inplace=True),
            nn.Conv2d(ch, 1, 3, 1, 1),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, inv_norm: Tensor, normal: Tensor, confidence: Tensor, image: Tensor) -> Tensor:
        x = torch.cat([inv_norm, normal, confidence, image], 1)
        return inv_norm + self.net(x)


class DPSNet(nn.Module):
    """Plane-sweep stereo network; `forward` is the engine form, `forward_train` returns everything training needs."""

    kind = "stereo"

    def __init__(
        self,
        height: int = 192,
        width: int = 640,
        planes: int = 64,
        min_depth: float = 1.0,
        max_depth: float = 80.0,
        views: int = 1,
        feat_ch: int = 32,
        cost_ch: int = 16,
        context_ch: int = 32,
        normal_ch: int = 32,
        refine_ch: int = 16,
    ) -> None:
        super().__init__()
        if height % 8 or width % 8 or height < 32 or width < 32:
            raise ValueError(f"height and width must be multiples of 8 and >= 32, got {height}x{width}")
        if planes < 8 or planes % 8:
            raise ValueError(f"planes must be a multiple of 8 and >= 8, got {planes}")
        if not 0 < min_depth < max_depth:
            raise ValueError(f"need 0 < min_depth < max_depth, got min_depth={min_depth} max_depth={max_depth}")
        if views < 1:
            raise ValueError(f"views must be >= 1, got {views}")
        self.config: dict[str, Any] = dict(
            height=height, width=width, planes=planes, min_depth=min_depth, max_depth=max_depth, views=views,
            feat_ch=feat_ch, cost_ch=cost_ch, context_ch=context_ch, normal_ch=normal_ch, refine_ch=refine_ch,
        )
        self.height, self.width, self.planes, self.views = height, width, planes, views
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        self.register_buffer("inv_depths", plane_inverse_depths_torch(min_depth, max_depth, planes), persistent=False)
        self.features = SPPFeatures(feat_ch)
        self.regularize = CostRegularization(2 * feat_ch, cost_ch)
        self.context = ContextAggregation(feat_ch, context_ch)
        self.normals = NormalBranch(cost_ch, normal_ch)
        self.refine = ConsistencyRefine(refine_ch)
        self.world_scale = 1.0 / (min_depth * max_depth) ** 0.5

    # -- the pieces -----------------------------------------------------------------------------------------
    def _world_volume(self, K4: Tensor, h: int, w: int) -> Tensor:
        """(B, 3, L, h, w): reference-camera coordinates of every pixel on every plane, scaled to about 1."""
        v, u = torch.meshgrid(
            torch.arange(h, dtype=K4.dtype, device=K4.device),
            torch.arange(w, dtype=K4.dtype, device=K4.device),
            indexing="ij",
        )
        pix = torch.stack([u.reshape(-1), v.reshape(-1), torch.ones_like(u).reshape(-1)], 0)
        rays = (inv_intrinsics_torch(K4) @ pix).reshape(-1, 3, 1, h, w)
        depth = (1.0 / self.inv_depths).view(1, 1, -1, 1, 1)
        return rays * depth * self.world_scale

    def _soft_argmin(self, cost: Tensor) -> tuple[Tensor, Tensor]:
        """Upsampled cost slices (B, L, H, W) -> inverse depth (B, 1, H, W), confidence (B, 1, H, W).

        Confidence is the probability mass within about two planes of the soft-argmin: planes up to 2 away count
        fully, fading to 0 at 3 away. The window is continuous in the soft-argmin, so a hair's difference in it
        (ONNX Runtime vs PyTorch, fp16 vs fp32) cannot flip a whole plane's mass in or out.
        """
        prob = torch.softmax(cost, dim=1)
        inv = (prob * self.inv_depths.view(1, -1, 1, 1)).sum(1, keepdim=True)
        idx = torch.arange(self.planes, dtype=cost.dtype, device=cost.device).view(1, -1, 1, 1)
        expected = (prob * idx).sum(1, keepdim=True)
        near = (3.0 - torch.abs(idx - expected)).clamp(0.0, 1.0)
        return inv, (prob * near).sum(1, keepdim=True)

    def forward_train(self, reference: Tensor, sources: Tensor, intrinsics: Tensor, poses: Tensor) -> dict[str, Tensor]:
        b, v = sources.shape[0], sources.shape[1]
        H, W = reference.shape[-2], reference.shape[-1]
        feats = self.features(torch.cat([reference, sources.reshape(b * v, 3, H, W)], 0))
        ref_feat, src_feat = feats[:b], feats[b:]
        c, h, w = ref_feat.shape[1], ref_feat.shape[2], ref_feat.shape[3]
        K4 = scale_intrinsics_torch(intrinsics, w / W)
        K4v = K4.unsqueeze(1).expand(b, v, 3, 3)
        Hs = plane_homographies_torch(K4, K4v, poses, self.inv_depths)  # (B, V, L, 3, 3)
        warped = warp_to_planes_torch(src_feat, Hs.reshape(b * v, self.planes, 3, 3))  # (B*V, C, L, h, w)
        ref_vol = ref_feat.unsqueeze(2).unsqueeze(1).expand(b, v, c, self.planes, h, w)
        ref_vol = ref_vol.reshape(b * v, c, self.planes, h, w)
        cost_feat, cost = self.regularize(torch.cat([ref_vol, warped], 1))
        cost_feat = cost_feat.reshape(b, v, -1, self.planes, h, w).mean(1)
        cost = cost.reshape(b, v, self.planes, h, w).mean(1)
        refined = self.context(cost, ref_feat)
        up = F.interpolate(refined, size=(H, W), mode="bilinear", align_corners=False)
        inv, confidence = self._soft_argmin(up)
        up0 = F.interpolate(cost, size=(H, W), mode="bilinear", align_corners=False)
        inv0, _ = self._soft_argmin(up0)
        normal = self.normals(cost_feat, self._world_volume(K4, h, w))
        normal = F.normalize(F.interpolate(normal, size=(H, W), mode="bilinear", align_corners=False), dim=1, eps=1e-6)
        inv_lo, inv_hi = 1.0 / self.max_depth, 1.0 / self.min_depth
        inv_norm = (inv - inv_lo) / (inv_hi - inv_lo)
        inv_ref = self.refine(inv_norm, normal, confidence, reference) * (inv_hi - inv_lo) + inv_lo
        inv_ref = inv_ref.clamp(inv_lo, inv_hi)
        return {
            "depth": 1.0 / inv_ref, "inv_depth": inv_ref, "inv_depth_stage1": inv, "inv_depth_coarse": inv0,
            "confidence": confidence, "normal": normal,
        }

    def forward(
        self, reference: Tensor, sources: Tensor, intrinsics: Tensor, poses: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        out = self.forward_train(reference, sources, intrinsics, poses)
        return out["depth"], out["confidence"], out["normal"]

    # -- deploy-module protocol -----------------------------------------------------------------------------
    def io_spec(self) -> dict[str, Any]:
        h, w, v = self.height, self.width, self.views

        def spec(name: str, shape: list[int], description: str) -> dict[str, Any]:
            return {"name": name, "shape": shape, "dtype": "float32", "description": description}

        return {
            "inputs": [
                spec("reference", [1, 3, h, w], "reference (left) RGB / 255"),
                spec("sources", [1, v, 3, h, w], "source views RGB / 255"),
                spec("intrinsics", [1, 3, 3], "K at the input resolution"),
                spec("poses", [1, v, 4, 4], "T_src_ref per source view"),
            ],
            "outputs": [
                {"name": "depth", "shape": [1, 1, h, w], "dtype": "float32", "units": "m", "description": "depth"},
                {"name": "confidence", "shape": [1, 1, h, w], "dtype": "float32", "units": "1",
                 "description": "probability mass within two planes of the estimate"},
                {"name": "normal", "shape": [1, 3, h, w], "dtype": "float32", "units": "1",
                 "description": "unit surface normal in the camera optical frame"},
            ],
            "depth_range": [self.min_depth, self.max_depth],
            "metric": True,
            "planes": self.planes,
        }

    def example_inputs(self) -> tuple[Tensor, ...]:
        g = torch.Generator().manual_seed(0)
        h, w, v = self.height, self.width, self.views
        ref = torch.rand(1, 3, h, w, generator=g)
        src = torch.roll(ref, shifts=-4, dims=-1).unsqueeze(1).repeat(1, v, 1, 1, 1)
        f = 0.56 * w
        K = torch.tensor([[[f, 0.0, w / 2 - 0.5], [0.0, f, h / 2 - 0.5], [0.0, 0.0, 1.0]]])
        T = torch.eye(4).repeat(1, v, 1, 1)
        T[:, :, 0, 3] = -0.54
        return ref, src, K, T


@register_model("stereo_dpsnet")
def build_stereo_dpsnet(**config: Any) -> DPSNet:
    return DPSNet(**config)

