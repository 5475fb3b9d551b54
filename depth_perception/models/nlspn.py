"""NLSPN depth completion: encoder-decoder over RGB + sparse depth, then non-local spatial propagation.

Seed: Park et al., "Non-Local Spatial Propagation Network for Depth Completion" (ECCV 2020). The network
predicts an initial dense depth, a confidence map (sigmoid) and, for every pixel, K = k*k - 1 neighbour offsets
and affinities from a zero-initialised head (so training starts from "no propagation"). Affinities are
normalized as the paper's TGASS: tanh(a) / gamma (gamma learnable, initialised to 0.5 K), multiplied by the
confidence sampled at each neighbour, divided by sum |a| where that sum exceeds 1; the reference pixel takes
1 - sum(a). T iterations mix each pixel with its neighbours' depth sampled bilinearly at base + offset.

Unlike the reference code (DCNv2, a compiled CUDA extension) the sampling is `grid_sample`: all K neighbours in
one call (the grid stacks them along the rows), the T iterations unrolled, so the graph exports to ONNX within
TensorRT 8.5's operator list. Sampling clamps at the image border (`padding_mode="border"`) instead of reading
zeros, so pixels near the border are not pulled towards 0 m.

`prior="ipbasic"` is our variant for inputs unlike the training set's: a third input, the classical in-fill of the
same sparse depth (`geometry.infill`, computed outside the graph), becomes the starting point. Every depth in the
graph is divided by one per-image scale (the in-fill's mean), so the network is blind to the depth range; the
initial depth is the in-fill times exp(correction) with the correction head zero-initialised, and with the
propagation also starting at "none" an untrained network returns the in-fill itself. Training learns only where
to depart from it, so the engine cannot start below the classical method it is compared with.

`correction=False` drops the initial-depth head: the propagation starts from the in-fill itself, and what is
learned is only where and how far each pixel mixes with its neighbours (with the measurements re-imposed): each
step is a normalized mix of in-fill values, not depth read from image features. Trained on synthetic scenes, the
correction head was what moved real-scene depth furthest from the truth (Motorcycle, random 5 %: the shipped
engine with its propagation zeroed scores 335 mm against its in-fill's 104). `guidance="local"` goes one step
further: no encoder-decoder at all; the confidence and the propagation's offsets and affinities come from a 7x7
neighbourhood of colour and depth (the stems and two 3x3 layers), local edge evidence of the kind the classical
guided in-fill uses, which does not depend on the look of the training world.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..geometry.infill import COMPLETION_PRIORS
from .registry import register_model
from .resnet import ImageNormalize, ResNetEncoder

PRIOR_MIN_SCALE = 0.05  # m: the per-image depth scale never falls below this (an all-empty in-fill reads 0)
GUIDANCE = ("deep", "local")  # what the heads read: the encoder-decoder's features, or a 7x7 neighbourhood
MAX_LOG_CORRECTION = 2.0  # the learned initial depth stays within e^-2 .. e^2 of the in-fill


def infill_prior(image: Tensor, sparse: Tensor, prior: str) -> Tensor:
    """The classical in-fill of a batch (image (B, 3, H, W) in [0, 1], sparse depth (B, 1, H, W) metres), as the
    engine's prior_depth input."""
    import numpy as np

    from ..geometry.infill import completion_prior

    images = image.detach().cpu().numpy().transpose(0, 2, 3, 1)
    arr = sparse.detach().cpu().numpy()
    out = np.stack([completion_prior(prior, im, a[0])[None] for im, a in zip(images, arr, strict=True)])
    return torch.from_numpy(out).to(sparse.device)


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def neighbour_base_offsets(prop_kernel: int) -> Tensor:
    """(K, 2) pixel offsets (dx, dy) of the k x k window without its centre: where each neighbour starts."""
    r = prop_kernel // 2
    pts = [(dx, dy) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if (dx, dy) != (0, 0)]
    return torch.tensor(pts, dtype=torch.float32)


def normalize_affinities(raw: Tensor, gamma: Tensor, neighbour_confidence: Tensor | None = None) -> Tensor:
    """TGASS: tanh(raw) / gamma, times the neighbours' confidence, divided by sum |a| where that exceeds 1.

    raw, neighbour_confidence: (B, K, H, W). Returns the K neighbour affinities; sum |a| <= 1 everywhere, so
    the reference weight 1 - sum(a) keeps every propagation step a bounded (stable) weighted average.
    """
    aff = torch.tanh(raw) / (gamma + 1e-8)
    if neighbour_confidence is not None:
        aff = aff * neighbour_confidence
    abs_sum = aff.abs().sum(1, keepdim=True) + 1e-4
    return aff / torch.clamp(abs_sum, min=1.0)


class NonLocalPropagation(nn.Module):
    """The propagation half of NLSPN: guidance features -> offsets and affinities -> T refinement steps."""

    def __init__(self, guide_ch: int, prop_kernel: int = 3, iterations: int = 18, gamma: float = 0.5,
                 preserve_input: bool = True) -> None:
        super().__init__()
        if prop_kernel < 3 or prop_kernel % 2 == 0:
            raise ValueError(f"prop_kernel must be odd and >= 3, got {prop_kernel}")
        if iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {iterations}")
        self.num = prop_kernel * prop_kernel - 1
        self.iterations = iterations
        self.preserve_input = preserve_input
        self.conv_offset_aff = nn.Conv2d(guide_ch, 3 * self.num, 3, 1, 1)
        nn.init.zeros_(self.conv_offset_aff.weight)  # zero offsets and affinities: start with no propagation
        nn.init.zeros_(self.conv_offset_aff.bias)
        self.gamma = nn.Parameter(torch.tensor([gamma * self.num]))
        self.register_buffer("base", neighbour_base_offsets(prop_kernel), persistent=False)

    def sampling_grid(self, offsets: Tensor) -> Tensor:
        """offsets (B, 2K, H, W) pixels (dx, dy per neighbour) -> grid (B, K*H, W, 2) for one grid_sample."""
        b, _, h, w = offsets.shape
        k = self.num
        ys = torch.arange(h, dtype=offsets.dtype, device=offsets.device).view(1, 1, h, 1)
        xs = torch.arange(w, dtype=offsets.dtype, device=offsets.device).view(1, 1, 1, w)
        off = offsets.view(b, k, 2, h, w)
        x = xs + self.base[:, 0].view(1, k, 1, 1) + off[:, :, 0]
        y = ys + self.base[:, 1].view(1, k, 1, 1) + off[:, :, 1]
        # align_corners=False: pixel centre u maps to (u + 0.5) * 2 / W - 1.
        gx = (x + 0.5) * (2.0 / w) - 1.0
        gy = (y + 0.5) * (2.0 / h) - 1.0
        return torch.stack([gx, gy], -1).view(b, k * h, w, 2)

    def sample(self, values: Tensor, grid: Tensor) -> Tensor:
        """values (B, 1, H, W) read at every neighbour -> (B, K, H, W)."""
        b, _, h, w = values.shape
        out = F.grid_sample(values, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return out.view(b, self.num, h, w)

    def offsets_affinities(self, guidance: Tensor, confidence: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """-> offsets (B, 2K, H, W), sampling grid, normalized neighbour affinities (B, K, H, W)."""
        out = self.conv_offset_aff(guidance)
        offsets, raw = out[:, : 2 * self.num], out[:, 2 * self.num:]
        grid = self.sampling_grid(offsets)
        aff = normalize_affinities(raw, self.gamma, self.sample(confidence, grid))
        return offsets, grid, aff

    def propagate(self, depth: Tensor, grid: Tensor, aff: Tensor, sparse: Tensor | None = None) -> Tensor:
        """T steps of d <- (1 - sum a) d + sum_k a_k d(neighbour k); measurements re-imposed around each step."""
        ref = 1.0 - aff.sum(1, keepdim=True)
        valid = sparse > 0 if (sparse is not None and self.preserve_input) else None
        if valid is not None:
            depth = torch.where(valid, sparse, depth)
        for _ in range(self.iterations):  # unrolled in the exported graph: fixed T, fixed shapes
            depth = ref * depth + (aff * self.sample(depth, grid)).sum(1, keepdim=True)
            if valid is not None:
                depth = torch.where(valid, sparse, depth)
        return depth


class NLSPN(nn.Module):
    """Depth completion network; `forward(image, sparse_depth) -> (depth, confidence)` is the engine form.

    image: RGB / 255 (B, 3, H, W); sparse_depth: metres (B, 1, H, W), 0 = no measurement. Depth is handled in
    units of max_depth inside the graph and clamped to [0, max_depth] at the output.
    """

    kind = "completion"

    def __init__(
        self,
        height: int = 352,
        width: int = 1216,
        layers: int = 34,
        width_base: int = 64,
        prop_kernel: int = 3,
        iterations: int = 18,
        gamma: float = 0.5,
        preserve_input: bool = True,
        max_depth: float = 90.0,
        shared_head: bool = False,
        prior: str = "none",
        correction: bool = True,
        guidance: str = "deep",
    ) -> None:
        super().__init__()
        if prior not in COMPLETION_PRIORS:
            raise ValueError(f"prior must be one of {COMPLETION_PRIORS}, got {prior!r}")
        if not correction and prior == "none":
            raise ValueError("correction=False needs a prior: without one there is no initial depth to propagate")
        if guidance not in GUIDANCE:
            raise ValueError(f"guidance must be one of {GUIDANCE}, got {guidance!r}")
        if height < 32 or width < 32:
            raise ValueError(f"height and width must be >= 32, got {height}x{width}")
        if not max_depth > 0:
            raise ValueError(f"max_depth must be > 0, got {max_depth}")
        if width_base < 8 or width_base % 4:
            raise ValueError(f"width_base must be a multiple of 4 and >= 8, got {width_base}")
        self.config: dict[str, Any] = dict(
            height=height, width=width, layers=layers, width_base=width_base, prop_kernel=prop_kernel,
            iterations=iterations, gamma=gamma, preserve_input=preserve_input, max_depth=max_depth,
            shared_head=shared_head,
        )
        if prior != "none":  # older engines' configs carry no key: they stay loadable as they were
            self.config["prior"] = prior
        if not correction:  # written only when off, as "prior": older configs stay as they were
            self.config["correction"] = False
        if guidance != "deep":
            self.config["guidance"] = guidance
        self.prior = prior
        self.height, self.width, self.max_depth = height, width, float(max_depth)
        w = width_base
        self.normalize = ImageNormalize()
        # Separate full-resolution stems for colour and depth (3/4 and 1/4 of the channels), as NLSPN does.
        self.stem_rgb = _conv_bn_relu(3, 3 * w // 4)
        self.stem_dep = _conv_bn_relu(1 if prior == "none" else 2, w // 4)
        self.num = prop_kernel * prop_kernel - 1
        self.encoder: ResNetEncoder | None = None
        if guidance == "local":
            # No encoder-decoder: the heads read a 7x7 neighbourhood of colour and depth (two more 3x3 layers on
            # the stems), so what they learn is local edge evidence, not the look of a training world.
            trunk: nn.Module | None = nn.Sequential(_conv_bn_relu(w, w), _conv_bn_relu(w, w))

            def head(cout: int) -> nn.Sequential:
                return nn.Sequential(nn.Conv2d(w, cout, 3, 1, 1))
        else:
            self.encoder = ResNetEncoder(layers=layers, width=w, in_channels=w)
            enc = self.encoder.num_ch_enc  # strides 2, 4, 8, 16, 32
            dec = [w, w, w, 2 * w, 4 * w]  # decoder outputs at strides 1, 2, 4, 8, 16
            self.up16 = _conv_bn_relu(enc[4] + enc[3], dec[4])
            self.up8 = _conv_bn_relu(dec[4] + enc[2], dec[3])
            self.up4 = _conv_bn_relu(dec[3] + enc[1], dec[2])
            self.up2 = _conv_bn_relu(dec[2] + enc[0], dec[1])
            self.up1 = _conv_bn_relu(dec[1] + w, dec[0])
            # The paper gives each output its own full-resolution branch; the light variant shares the first
            # convolution (full-resolution convolutions dominate its run time on small devices).
            trunk = _conv_bn_relu(dec[0] + w, w) if shared_head else None

            def head(cout: int) -> nn.Sequential:
                return nn.Sequential(nn.Conv2d(w, cout, 3, 1, 1)) if shared_head else \
                    nn.Sequential(_conv_bn_relu(dec[0] + w, w), nn.Conv2d(w, cout, 3, 1, 1))

        self.head_trunk = trunk
        # correction=False: no initial-depth head at all; the propagation starts from the in-fill itself
        self.init_head = head(1) if correction else None
        if self.init_head is not None and prior == "none":
            nn.init.constant_(self.init_head[-1].bias, 0.2)  # start near a typical depth (0.2 max_depth), not at 0
        elif self.init_head is not None:  # a log-ratio correction of the in-fill that starts at exactly none
            nn.init.zeros_(self.init_head[-1].weight)
            nn.init.zeros_(self.init_head[-1].bias)
        self.conf_head = head(1)
        self.guide_head = head(self.num)
        self.propagation = NonLocalPropagation(self.num, prop_kernel, iterations, gamma, preserve_input)

    @staticmethod
    def _up_cat(x: Tensor, skip: Tensor) -> Tensor:
        # Resize to the skip's exact size: any input size works (240 rows are not a multiple of 32).
        x = F.interpolate(x, size=(skip.shape[-2], skip.shape[-1]), mode="bilinear", align_corners=False)
        return torch.cat([x, skip], 1)

    def _decode(self, f1: Tensor) -> Tensor:
        assert self.encoder is not None
        f2, f4, f8, f16, f32 = self.encoder(f1)
        x = self.up16(self._up_cat(f32, f16))
        x = self.up8(self._up_cat(x, f8))
        x = self.up4(self._up_cat(x, f4))
        x = self.up2(self._up_cat(x, f2))
        x = self.up1(self._up_cat(x, f1))
        return torch.cat([x, f1], 1)

    def forward_train(self, image: Tensor, sparse_depth: Tensor, prior_depth: Tensor | None = None
                      ) -> dict[str, Tensor]:
        sparse = torch.clamp(sparse_depth, min=0.0)
        if self.prior == "none":
            scale = torch.full_like(sparse[:, :, :1, :1], self.max_depth)
            depth_in = sparse / scale
        else:
            if prior_depth is None:
                raise ValueError(f"this NLSPN takes a prior_depth input (the {self.prior} in-fill)")
            prior = torch.clamp(prior_depth, min=0.0)
            scale = torch.clamp(prior.mean(dim=(2, 3), keepdim=True), min=PRIOR_MIN_SCALE)
            prior = prior / scale
            depth_in = torch.cat([sparse / scale, prior], 1)
        sparse = sparse / scale
        f1 = torch.cat([self.stem_rgb(self.normalize(image)), self.stem_dep(depth_in)], 1)
        x = f1 if self.encoder is None else self._decode(f1)
        if self.head_trunk is not None:
            x = self.head_trunk(x)
        if self.init_head is None:
            init = prior
        elif self.prior == "none":
            init = self.init_head(x)
        else:
            init = prior * torch.exp(torch.clamp(self.init_head(x), -MAX_LOG_CORRECTION, MAX_LOG_CORRECTION))
        confidence = torch.sigmoid(self.conf_head(x))
        offsets, grid, aff = self.propagation.offsets_affinities(self.guide_head(x), confidence)
        refined = self.propagation.propagate(init, grid, aff, sparse)
        depth = torch.clamp(refined * scale, 0.0, self.max_depth)
        return {
            "depth": depth, "init_depth": init * scale, "confidence": confidence,
            "offsets": offsets, "affinities": aff,
        }

    def forward(self, image: Tensor, sparse_depth: Tensor, prior_depth: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        out = self.forward_train(image, sparse_depth, prior_depth)
        return out["depth"], out["confidence"]

    # -- deploy-module protocol -----------------------------------------------------------------------------
    def io_spec(self) -> dict[str, Any]:
        h, w = self.height, self.width
        return {
            "inputs": [
                {"name": "image", "shape": [1, 3, h, w], "dtype": "float32", "description": "RGB / 255"},
                {"name": "sparse_depth", "shape": [1, 1, h, w], "dtype": "float32",
                 "description": "sparse depth in metres (projected LiDAR), 0 = no measurement"},
            ] + ([{"name": "prior_depth", "shape": [1, 1, h, w], "dtype": "float32",
                   "description": f"the {self.prior} in-fill of sparse_depth at this size, metres"}]
                 if self.prior != "none" else []),
            "outputs": [
                {"name": "depth", "shape": [1, 1, h, w], "dtype": "float32", "units": "m",
                 "description": "dense depth in [0, max_depth]"},
                {"name": "confidence", "shape": [1, 1, h, w], "dtype": "float32", "units": "1",
                 "description": "confidence of the initial depth (sigmoid), weights the propagation"},
            ],
            "depth_range": [0.0, self.max_depth],
            "metric": True,
            "iterations": self.propagation.iterations,
            "neighbours": self.num,
            **({"prior": self.prior} if self.prior != "none" else {}),
        }

    def example_inputs(self) -> tuple[Tensor, ...]:
        g = torch.Generator().manual_seed(0)
        h, w = self.height, self.width
        image = torch.rand(1, 3, h, w, generator=g)
        depth = 2.0 + torch.rand(1, 1, h, w, generator=g) * (0.5 * self.max_depth)
        keep = torch.rand(1, 1, h, w, generator=g) < 0.05
        sparse = torch.where(keep, depth, torch.zeros_like(depth))
        if self.prior == "none":
            return image, sparse
        return image, sparse, infill_prior(image, sparse, self.prior)


LIGHT = dict(layers=18, width_base=16, shared_head=True)


@register_model("nlspn")
def build_nlspn(**config: Any) -> NLSPN:
    """The paper's scale: ResNet-34 encoder, base width 64 (about 26 M parameters)."""
    return NLSPN(**config)


@register_model("nlspn_light")
def build_nlspn_light(**config: Any) -> NLSPN:
    """The embedded variant: ResNet-18 layout at base width 16, one shared head trunk (a few MB of weights)."""
    return NLSPN(**{**LIGHT, **config})
