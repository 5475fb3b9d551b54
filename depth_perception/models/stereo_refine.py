"""A learned refinement of the classical sweep: the stereo engine that cannot fall far below its classical peer.

Seed: the refinement stages of StereoNet (Khamis et al., ECCV 2018) and StereoDRNet (Chabra et al., CVPR 2019):
a 2-D network that sees the reference image, a disparity estimate and the photometric error of that estimate
(the right image warped onto the left by it) and predicts a residual. Here the estimate is the classical plane
sweep's (`pipelines.stereo_classical`: census/ZNCC + SGM, left-right checked), its holes filled along each row
from the background side (`geometry.infill.fill_rows_background`, the KITTI devkit's rule), so the network
starts from a dense disparity and learns to fix what the sweep gets wrong: occlusions, textureless regions,
thin structures, sub-pixel error.

Range blindness: every disparity in the graph is divided by the prior's mean disparity over the image, so a
room at 2 m seen with a 19 cm baseline and a street at 30 m with 54 cm look alike; the residual is predicted in
those units and added to the prior. The residual head starts at zero, so an untrained engine returns the prior.
With `correct="holes"` the residual applies only where the sweep gave no answer (prior_confidence 0) and the
right view sees the pixel at the prior disparity: the sweep's own depths pass through unchanged, and so does
the row fill where no match can exist (the left band the right camera does not see), and the network learns
the rest of the in-fill. With `hole_fill="guided"` (sidecar key `hole_fill`) the holes are filled instead by the
colour-guided in-fill of the sweep's disparities (`geometry.infill.guided_fill`: stopped at the image's edges), the
row fill only where no measurement reaches. On Middlebury Motorcycle it scores as the row fill does (untrained,
bad-1 / bad-3 / AbsRel 0.193 / 0.103 / 0.028 against 0.194 / 0.100 / 0.028; trained 25 CPU minutes, 0.194 /
0.103 / 0.028), so the shipped engines keep "rows" (docs/engines/stereo.md).

Inputs are the stereo engine's (reference, sources, intrinsics, poses) plus `prior_depth` (the filled sweep,
metres) and `prior_confidence` (the sweep's confidence, 0 where it left a hole); the first source must be the
rectified right camera (T_src_ref = [I | (-baseline, 0, 0)]). Fully convolutional (sides divisible by 8),
no normalization layers (nothing to drift between training and deployment statistics), every op within
TensorRT 8.5's ONNX parser (2-D GridSample).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..geometry.infill import STEREO_HOLE_FILLS
from .registry import register_model

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
MIN_SCALE_PX = 0.5  # the mean disparity below which the image counts as "all far" (no normalization beyond)
MAX_STEP = 4.0  # the residual per iteration, in units of the mean disparity
CORRECT = ("all", "holes")  # where the residual applies: every pixel, or only where the sweep left a hole


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation),
                         nn.LeakyReLU(0.1, inplace=True))


class _Res(nn.Module):
    def __init__(self, ch: int, dilation: int = 1) -> None:
        super().__init__()
        self.a = nn.Conv2d(ch, ch, 3, padding=dilation, dilation=dilation)
        self.b = nn.Conv2d(ch, ch, 3, padding=dilation, dilation=dilation)

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x + self.b(F.leaky_relu(self.a(x), 0.1)), 0.1)


def _up(x: Tensor, like: Tensor) -> Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


def warp_right_to_left(right: Tensor, disparity: Tensor) -> tuple[Tensor, Tensor]:
    """The right image (B, C, H, W) sampled at x - d for every left pixel, and where x - d is inside (B, 1, H, W)."""
    _, _, h, w = right.shape
    xs = torch.arange(w, dtype=right.dtype, device=right.device).view(1, 1, 1, w)
    ys = torch.arange(h, dtype=right.dtype, device=right.device).view(1, 1, h, 1)
    x_src = xs - disparity  # (B, 1, H, W)
    gx = (x_src + 0.5) * (2.0 / w) - 1.0
    gy = ((ys + 0.5) * (2.0 / h) - 1.0).expand_as(gx)
    grid = torch.cat([gx, gy], 1).permute(0, 2, 3, 1)
    warped = F.grid_sample(right, grid, mode="bilinear", padding_mode="border", align_corners=False)
    inside = ((x_src >= 0.0) & (x_src <= w - 1.0)).to(right.dtype)
    return warped, inside


# The depths the refinement clamps to (its disparities to f B / max .. f B / min). It works on disparity divided by
# the prior's mean, so nothing in it is tied to a metric range: this only bounds it, wide enough for a bench rig's
# 0.2 m (OpenCV's chessboard rig) and a street's far field. The first engines clamped at 0.3 m and read a nearer
# surface as 0.3 m.
DEPTH_RANGE = (0.05, 200.0)


class StereoRefine(nn.Module):
    """prior disparity + photometric error -> refined disparity; see the module docstring."""

    kind = "stereo"

    def __init__(self, height: int = 192, width: int = 640, base: int = 16, iterations: int = 1,
                 min_depth: float = DEPTH_RANGE[0], max_depth: float = DEPTH_RANGE[1], correct: str = "all",
                 lookup: int = 0,
                 hole_fill: str = "rows", prior_edge_snap: bool = False) -> None:
        super().__init__()
        if not 0 <= lookup <= 8:
            raise ValueError(f"lookup must be in [0, 8] pixels, got {lookup}")
        if correct not in CORRECT:
            raise ValueError(f"correct must be one of {CORRECT}, got {correct!r}")
        if hole_fill not in STEREO_HOLE_FILLS:
            raise ValueError(f"hole_fill must be one of {STEREO_HOLE_FILLS}, got {hole_fill!r}")
        if height % 8 or width % 8:
            raise ValueError(f"height and width must be multiples of 8, got {height}x{width}")
        if iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}")
        if not 0 < min_depth < max_depth:
            raise ValueError(f"need 0 < min_depth < max_depth, got {min_depth}, {max_depth}")
        self.height, self.width, self.base, self.iterations = height, width, base, iterations
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        self.correct = correct
        self.config = dict(height=height, width=width, base=base, iterations=iterations, min_depth=min_depth,
                           max_depth=max_depth)
        if correct != "all":  # configs of the first engines carry no key: they stay loadable as they were
            self.config["correct"] = correct
        self.lookup = lookup
        if lookup:
            self.config["lookup"] = lookup
        self.hole_fill = hole_fill
        if hole_fill != "rows":
            self.config["hole_fill"] = hole_fill
        if prior_edge_snap:  # how the training priors were made (the runtime snaps when its edge_snap is on)
            self.config["prior_edge_snap"] = True
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        c = base
        # reference (3), photometric error (3), disparity / scale (1), prior confidence (1), right view inside (1)
        # + with lookup r: the photometric error (grey) at the prior disparity shifted by -r..r px
        self.enc0 = _conv(9 + (2 * lookup + 1 if lookup else 0), c)  # full resolution: this one, dec0, the heads
        self.enc1 = nn.Sequential(_conv(c, 2 * c, 2), _Res(2 * c))
        self.enc2 = nn.Sequential(_conv(2 * c, 3 * c, 2), _Res(3 * c))
        self.enc3 = nn.Sequential(_conv(3 * c, 4 * c, 2), _Res(4 * c, 2), _Res(4 * c, 4))
        self.dec2 = _conv(4 * c + 3 * c, 3 * c)
        self.dec1 = _conv(3 * c + 2 * c, 2 * c)
        self.dec0 = _conv(2 * c + c, c)
        self.residual_head = nn.Conv2d(c, 1, 3, padding=1)
        self.conf_head = nn.Conv2d(c, 1, 3, padding=1)
        nn.init.zeros_(self.residual_head.weight)
        nn.init.zeros_(self.residual_head.bias)

    def _step(self, ref_n: Tensor, right: Tensor, disp: Tensor, scale: Tensor, conf: Tensor,
              ref: Tensor) -> tuple[Tensor, Tensor]:
        warped, inside = warp_right_to_left(right, disp)
        channels = [ref_n, (ref - warped) / self.std, disp / scale, conf, inside]
        if self.lookup:  # a local cost volume around the prior: where the photometric minimum lies
            channels.append(self._lookup(ref.mean(1, keepdim=True), right.mean(1, keepdim=True), disp))
        x0 = self.enc0(torch.cat(channels, 1))
        x1 = self.enc1(x0)
        x2 = self.enc2(x1)
        x3 = self.enc3(x2)
        y2 = self.dec2(torch.cat([_up(x3, x2), x2], 1))
        y1 = self.dec1(torch.cat([_up(y2, x1), x1], 1))
        y0 = self.dec0(torch.cat([_up(y1, x0), x0], 1))
        step = MAX_STEP * torch.tanh(self.residual_head(y0) / MAX_STEP)
        if self.correct == "holes":  # the sweep's own answers stand; what it left open and the right view sees
            step = step * ((conf <= 0) & (inside > 0)).to(step.dtype)
        return disp + scale * step, self.conf_head(y0)

    def _lookup(self, grey_ref: Tensor, grey_right: Tensor, disp: Tensor) -> Tensor:
        """|grey reference - grey right at x - d - k| for k = -r..r: (B, 2r + 1, H, W), one grid_sample for all."""
        b, _, h, w = disp.shape
        offsets = torch.arange(-self.lookup, self.lookup + 1, dtype=disp.dtype, device=disp.device)
        n = offsets.numel()
        xs = torch.arange(w, dtype=disp.dtype, device=disp.device).view(1, 1, 1, w)
        ys = torch.arange(h, dtype=disp.dtype, device=disp.device).view(1, 1, h, 1)
        x_src = xs - disp - offsets.view(1, n, 1, 1)  # (B, n, H, W)
        gx = (x_src + 0.5) * (2.0 / w) - 1.0
        gy = ((ys + 0.5) * (2.0 / h) - 1.0).expand_as(gx)
        # the n shifted grids side by side along the width: (B, H, n * W, 2)
        grid = torch.stack([gx, gy], -1).permute(0, 2, 1, 3, 4).reshape(b, h, n * w, 2)
        sampled = F.grid_sample(grey_right, grid, mode="bilinear", padding_mode="border", align_corners=False)
        sampled = sampled.view(b, h, n, w).permute(0, 2, 1, 3)  # (B, n, H, W)
        return 4.0 * (grey_ref - sampled).abs()

    def forward_train(self, reference: Tensor, sources: Tensor, intrinsics: Tensor, poses: Tensor,
                      prior_depth: Tensor, prior_confidence: Tensor) -> dict[str, Tensor]:
        """Disparities in pixels at the input size: `disparity` (the last iteration), `prior_disparity`, and
        `fxb` (B, 1, 1, 1), the focal length times the baseline that turns them into depth."""
        right = sources[:, 0]
        fxb = (intrinsics[:, 0, 0] * (-poses[:, 0, 0, 3])).clamp_min(1e-6).view(-1, 1, 1, 1)
        depth = prior_depth.clamp(self.min_depth, self.max_depth)
        prior = fxb / depth
        scale = prior.mean(dim=(2, 3), keepdim=True).clamp_min(MIN_SCALE_PX)
        ref_n = (reference - self.mean) / self.std
        conf = prior_confidence.clamp(0.0, 1.0) * (prior_depth > 0).to(prior.dtype)
        lo, hi = fxb / self.max_depth, fxb / self.min_depth
        disp, logits = prior, prior
        for _ in range(self.iterations):
            disp, logits = self._step(ref_n, right, disp, scale, conf, reference)
            disp = torch.maximum(torch.minimum(disp, hi), lo)
        return {"disparity": disp, "prior_disparity": prior, "confidence_logits": logits, "fxb": fxb,
                "scale": scale}

    def forward(self, reference: Tensor, sources: Tensor, intrinsics: Tensor, poses: Tensor, prior_depth: Tensor,
                prior_confidence: Tensor) -> tuple[Tensor, Tensor]:
        out = self.forward_train(reference, sources, intrinsics, poses, prior_depth, prior_confidence)
        return out["fxb"] / out["disparity"], torch.sigmoid(out["confidence_logits"])

    # -- deploy-module protocol -----------------------------------------------------------------------------
    def io_spec(self) -> dict[str, Any]:
        h, w = self.height, self.width

        def spec(name: str, shape: list[int], description: str) -> dict[str, Any]:
            return {"name": name, "shape": shape, "dtype": "float32", "description": description}

        return {
            "inputs": [
                spec("reference", [1, 3, h, w], "reference (left) RGB / 255"),
                spec("sources", [1, 1, 3, h, w], "the rectified right view, RGB / 255"),
                spec("intrinsics", [1, 3, 3], "K at the input resolution"),
                spec("poses", [1, 1, 4, 4], "T_right_left: [I | (-baseline, 0, 0)]"),
                spec("prior_depth", [1, 1, h, w], "the classical sweep's depth, holes filled "
                     + ("by the colour-guided in-fill" if self.hole_fill == "guided" else "from the background")
                     + ", m"),
                spec("prior_confidence", [1, 1, h, w], "the classical sweep's confidence, 0 at its holes"),
            ],
            "outputs": [
                {"name": "depth", "shape": [1, 1, h, w], "dtype": "float32", "units": "m", "description": "depth"},
                {"name": "confidence", "shape": [1, 1, h, w], "dtype": "float32", "units": "1",
                 "description": "probability that the disparity is within 1 px (sigmoid)"},
            ],
            "depth_range": [self.min_depth, self.max_depth],
            "metric": True,
            "prior": "classical",
            **({"hole_fill": self.hole_fill} if self.hole_fill != "rows" else {}),
        }

    def example_inputs(self) -> tuple[Tensor, ...]:
        g = torch.Generator().manual_seed(0)
        h, w = self.height, self.width
        ref = torch.rand(1, 3, h, w, generator=g)
        src = torch.roll(ref, shifts=-4, dims=-1).unsqueeze(1)
        f = 0.56 * w
        K = torch.tensor([[[f, 0.0, w / 2 - 0.5], [0.0, f, h / 2 - 0.5], [0.0, 0.0, 1.0]]])
        T = torch.eye(4).view(1, 1, 4, 4).clone()
        T[:, :, 0, 3] = -0.54
        depth = 2.0 + 20.0 * torch.rand(1, 1, h, w, generator=g)
        conf = torch.rand(1, 1, h, w, generator=g)
        return ref, src, K, T, depth, conf


@register_model("stereo_refine")
def build_stereo_refine(**config: Any) -> StereoRefine:
    return StereoRefine(**config)
