"""Monocular depth networks: monodepth2's ResNet U-Net with its pose network, and Eigen et al.'s coarse-to-fine net.

Seeds: Godard et al., "Digging Into Self-Supervised Monocular Depth Estimation" (ICCV 2019) for the depth
decoder (nearest-upsampling U-Net with skips, sigmoid disparity at 4 scales, `disp_to_depth`) and the pose
network (ResNet on a stacked frame pair, 1x1 squeeze, three convolutions, spatial mean, x 0.01 -> axis-angle +
translation); Eigen, Puhrsch and Fergus, "Depth Map Prediction from a Single Image using a Multi-Scale Deep
Network" (NIPS 2014) for the coarse global stack (convolutions then fully connected layers over the whole
image) refined by a fine local stack that takes the coarse output as an extra channel.

Both deploy modules take `image` [1, 3, H, W] RGB / 255 (ImageNet normalization happens in the graph) and
return (`depth` m, `disparity` in [0, 1]), where disparity is the normalized inverse depth
(1/depth - 1/max) / (1/min - 1/max): the sigmoid output for the ResNet net. Only Conv, Relu, Elu, Sigmoid,
MaxPool, Resize (nearest, linear), Gemm and elementwise ops: all within TensorRT 8.5's ONNX parser.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..geometry.se3 import axis_angle_to_matrix_torch
from .registry import register_model
from .resnet import ImageNormalize, ResNetEncoder

# Architecture presets of `depth-perception train mono --arch`. "narrow" is the shipped embedded default: a
# ResNet-18 at 3/8 width with a half-width decoder, 1.5 GMAC and 2.2 M parameters at 640x192 (the full
# ResNet-18 preset: 8.0 GMAC, 14 M), which keeps ONNX Runtime on one CPU core under 50 ms a frame.
ARCHITECTURES: dict[str, tuple[str, dict[str, Any]]] = {
    "resnet18": ("mono_resnet", {"encoder_layers": 18, "encoder_width": 64, "decoder_width": 16}),
    "resnet34": ("mono_resnet", {"encoder_layers": 34, "encoder_width": 64, "decoder_width": 16}),
    "narrow": ("mono_resnet", {"encoder_layers": 18, "encoder_width": 24, "decoder_width": 8}),
    "eigen": ("mono_eigen", {}),
}


INIT_DEPTH = 10.0  # metres: where the depth heads start (a typical street-scene depth)


def disp_to_depth(disp: Tensor, min_depth: float, max_depth: float) -> tuple[Tensor, Tensor]:
    """monodepth2's map of a sigmoid output to (scaled inverse depth, depth) within [min_depth, max_depth]."""
    min_disp, max_disp = 1.0 / max_depth, 1.0 / min_depth
    scaled = min_disp + (max_disp - min_disp) * disp
    return scaled, 1.0 / scaled


def depth_to_normalized_disp(depth: Tensor, min_depth: float, max_depth: float) -> Tensor:
    """Inverse of `disp_to_depth`: depth -> the [0, 1] disparity the engines output."""
    min_disp, max_disp = 1.0 / max_depth, 1.0 / min_depth
    return (1.0 / depth - min_disp) / (max_disp - min_disp)


def _check_common(height: int, width: int, min_depth: float, max_depth: float) -> None:
    if height % 32 or width % 32 or height < 32 or width < 32:
        raise ValueError(f"height and width must be multiples of 32 and >= 32, got {height}x{width}")
    if not 0 < min_depth < max_depth:
        raise ValueError(f"need 0 < min_depth < max_depth, got min_depth={min_depth} max_depth={max_depth}")


def _mono_io_spec(height: int, width: int, min_depth: float, max_depth: float) -> dict[str, Any]:
    return {
        "inputs": [{"name": "image", "shape": [1, 3, height, width], "dtype": "float32",
                    "description": "RGB / 255, NCHW (ImageNet normalization is inside the graph)"}],
        "outputs": [
            {"name": "depth", "shape": [1, 1, height, width], "dtype": "float32", "units": "m",
             "description": f"depth in [{min_depth}, {max_depth}] m (up to scale unless the sidecar says metric)"},
            {"name": "disparity", "shape": [1, 1, height, width], "dtype": "float32", "units": "1",
             "description": "normalized inverse depth (1/depth - 1/max) / (1/min - 1/max) in [0, 1]"},
        ],
        "depth_range": [min_depth, max_depth],
    }


PADDINGS = ("zeros", "reflect")  # of the depth decoder; monodepth2 pads by reflection, we by zeros (no Pad ops)


class ConvBlock(nn.Module):
    """3x3 convolution + ELU, the decoder's unit (zero padding by default: reflection pads cost a Pad op per
    layer)."""

    def __init__(self, cin: int, cout: int, padding: str = "zeros") -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, 1, 1, padding_mode=padding)
        self.act = nn.ELU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv(x))


class DepthDecoder(nn.Module):
    """monodepth2's decoder: from the stride-32 features up, ConvBlock, nearest x2, concat the skip, ConvBlock;
    a 3x3 conv + sigmoid gives disparity at scales 0-3 (strides 1, 2, 4, 8)."""

    def __init__(self, num_ch_enc: list[int], decoder_width: int = 16, scales: tuple[int, ...] = (0, 1, 2, 3),
                 padding: str = "zeros") -> None:
        super().__init__()
        if decoder_width < 2:
            raise ValueError(f"decoder_width must be >= 2, got {decoder_width}")
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        self.scales = tuple(scales)
        self.num_ch_dec = [decoder_width * 2**i for i in range(5)]  # 16, 32, 64, 128, 256 for width 16
        self.upconv0 = nn.ModuleList()
        self.upconv1 = nn.ModuleList()
        for i in range(4, -1, -1):
            cin = num_ch_enc[-1] if i == 4 else self.num_ch_dec[i + 1]
            self.upconv0.append(ConvBlock(cin, self.num_ch_dec[i], padding))
            cin = self.num_ch_dec[i] + (num_ch_enc[i - 1] if i > 0 else 0)
            self.upconv1.append(ConvBlock(cin, self.num_ch_dec[i], padding))
        self.dispconv = nn.ModuleDict({str(s): nn.Conv2d(self.num_ch_dec[s], 1, 3, 1, 1, padding_mode=padding)
                                       for s in self.scales})

    def forward(self, features: list[Tensor]) -> dict[int, Tensor]:
        out: dict[int, Tensor] = {}
        x = features[-1]
        for k, i in enumerate(range(4, -1, -1)):
            x = self.upconv0[k](x)
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            if i > 0:
                x = torch.cat([x, features[i - 1]], 1)
            x = self.upconv1[k](x)
            if i in self.scales:
                out[i] = torch.sigmoid(self.dispconv[str(i)](x))
        return out


class PoseDecoder(nn.Module):
    """monodepth2's pose decoder for one frame pair: 1x1 squeeze, three 3x3 convs, spatial mean, x 0.01."""

    def __init__(self, num_ch_enc: list[int], width: int = 256) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(num_ch_enc[-1], width, 1)
        self.convs = nn.Sequential(
            nn.Conv2d(width, width, 3, 1, 1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, 1, 1), nn.ReLU(inplace=True),
            nn.Conv2d(width, 6, 1),
        )

    def forward(self, features: list[Tensor]) -> tuple[Tensor, Tensor]:
        x = self.convs(F.relu(self.squeeze(features[-1])))
        out = 0.01 * x.mean(dim=(2, 3))  # small initial motions keep early warps near the identity
        return out[:, :3], out[:, 3:]


class PoseNet(nn.Module):
    """Relative pose of a frame pair (stacked as 6 channels) -> (axis-angle (B, 3), translation (B, 3))."""

    def __init__(self, layers: int = 18, width: int = 64, zero_init_residual: bool = True) -> None:
        super().__init__()
        self.normalize = ImageNormalize(frames=2)
        self.encoder = ResNetEncoder(layers, width, in_channels=6, zero_init_residual=zero_init_residual)
        self.decoder = PoseDecoder(self.encoder.num_ch_enc, width=max(32, 4 * width))

    def forward(self, frame_a: Tensor, frame_b: Tensor) -> tuple[Tensor, Tensor]:
        return self.decoder(self.encoder(self.normalize(torch.cat([frame_a, frame_b], 1))))


def pose_to_matrix(axisangle: Tensor, translation: Tensor, invert: bool = False) -> Tensor:
    """monodepth2's transformation_from_parameters: T = [R | t] (or its inverse), (B, 4, 4)."""
    R = axis_angle_to_matrix_torch(axisangle)
    t = translation
    if invert:
        R = R.transpose(1, 2)
        t = -(R[:, :3, :3] @ t.unsqueeze(-1)).squeeze(-1)
    T = R.clone()
    T[:, :3, 3] = t
    return T


class MonoDepthNet(nn.Module):
    """monodepth2 depth network (deploy form); `train_forward` gives the 4-scale sigmoid disparities.

    `pose_net=True` adds the training-only pose network as `.pose` (the deploy forward never uses it; the
    export drops it).
    """

    kind = "mono"

    def __init__(
        self,
        height: int = 192,
        width: int = 640,
        encoder_layers: int = 18,
        encoder_width: int = 24,
        decoder_width: int = 8,
        min_depth: float = 0.1,
        max_depth: float = 100.0,
        pose_net: bool = False,
        pose_layers: int = 18,
        pose_width: int | None = None,
        decoder_padding: str = "zeros",
        zero_init_residual: bool = True,
        init_depth: float | None = INIT_DEPTH,
    ) -> None:
        super().__init__()
        _check_common(height, width, min_depth, max_depth)
        pose_width = encoder_width if pose_width is None else int(pose_width)
        self.config: dict[str, Any] = dict(
            height=height, width=width, encoder_layers=encoder_layers, encoder_width=encoder_width,
            decoder_width=decoder_width, min_depth=float(min_depth), max_depth=float(max_depth),
            pose_net=bool(pose_net), pose_layers=pose_layers, pose_width=pose_width,
        )
        # training-recipe choices (issue 18's ablations), recorded only where they differ from the defaults
        for key, value, default in (("decoder_padding", decoder_padding, "zeros"),
                                    ("zero_init_residual", bool(zero_init_residual), True),
                                    ("init_depth", init_depth, INIT_DEPTH)):
            if value != default:
                self.config[key] = value
        self.height, self.width = height, width
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        self.normalize = ImageNormalize()
        self.encoder = ResNetEncoder(encoder_layers, encoder_width, zero_init_residual=zero_init_residual)
        self.decoder = DepthDecoder(self.encoder.num_ch_enc, decoder_width, padding=decoder_padding)
        if init_depth is not None:  # None: monodepth2's start, every head at the sigmoid's midpoint
            if not min_depth < init_depth < max_depth:
                init_depth = (min_depth * max_depth) ** 0.5
            self._init_depth(init_depth)
        self.pose: PoseNet | None = PoseNet(pose_layers, pose_width, zero_init_residual) if pose_net else None

    def _init_depth(self, depth: float) -> None:
        """Start every disparity head at `depth`: from the sigmoid's midpoint (0.2 m for [0.1, 100]) a stereo
        view with a real baseline warps from hundreds of pixels away, loses the per-pixel minimum everywhere
        and never fixes the scale; from street-scene depth it does."""
        target = float(depth_to_normalized_disp(torch.tensor(depth), self.min_depth, self.max_depth))
        logit = float(torch.logit(torch.tensor(target)))
        for conv in self.decoder.dispconv.values():
            nn.init.constant_(conv.bias, logit)

    def train_forward(self, image: Tensor) -> dict[int, Tensor]:
        """Sigmoid disparity at scales 0-3 ({scale: (B, 1, H / 2^s, W / 2^s)})."""
        return self.decoder(self.encoder(self.normalize(image)))

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        disp = self.train_forward(image)[0]
        _, depth = disp_to_depth(disp, self.min_depth, self.max_depth)
        return depth, disp

    def io_spec(self) -> dict[str, Any]:
        return _mono_io_spec(self.height, self.width, self.min_depth, self.max_depth)

    def example_inputs(self) -> tuple[Tensor, ...]:
        g = torch.Generator().manual_seed(0)
        return (torch.rand(1, 3, self.height, self.width, generator=g),)

    def deploy_config(self) -> dict[str, Any]:
        """The config of the same network without the training-only pose net."""
        return {**self.config, "pose_net": False}


def _eigen_conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2), nn.ReLU(inplace=True))


class EigenNet(nn.Module):
    """Eigen et al. 2014 coarse-to-fine depth (deploy form); `train_forward` gives log depth at 1/4 and 1/8.

    Coarse: five convolution layers down to stride 32, two fully connected layers over the whole image (the
    global view), reshaped to a 1/8-resolution log-depth map. Fine: a stride-4 convolution + pool on the image,
    concatenated with the (upsampled) coarse map, two more convolutions -> log depth at 1/4 resolution.
    Output depth is upsampled bilinearly to the input and clamped to [min_depth, max_depth].
    """

    kind = "mono"

    def __init__(
        self,
        height: int = 192,
        width: int = 640,
        channels: int = 32,
        hidden: int = 512,
        min_depth: float = 0.1,
        max_depth: float = 100.0,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        _check_common(height, width, min_depth, max_depth)
        if channels < 4 or hidden < 8:
            raise ValueError(f"channels must be >= 4 and hidden >= 8, got channels={channels} hidden={hidden}")
        self.config: dict[str, Any] = dict(height=height, width=width, channels=channels, hidden=hidden,
                                           min_depth=float(min_depth), max_depth=float(max_depth), dropout=dropout)
        self.height, self.width = height, width
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        self.normalize = ImageNormalize()
        c = channels
        self.coarse_convs = nn.Sequential(
            _eigen_conv(3, c, 11, 4), nn.MaxPool2d(2),                  # stride 8
            _eigen_conv(c, 2 * c, 5), nn.MaxPool2d(2),                  # stride 16
            _eigen_conv(2 * c, 4 * c, 3), _eigen_conv(4 * c, 4 * c, 3),
            _eigen_conv(4 * c, 4 * c, 3, 2),                            # stride 32
        )
        self.coarse_h, self.coarse_w = height // 8, width // 8
        feat = 4 * c * (height // 32) * (width // 32)
        self.coarse_fc = nn.Sequential(
            nn.Flatten(), nn.Linear(feat, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, self.coarse_h * self.coarse_w),
        )
        # Start the coarse output near the log of a mid-range depth, so early training is not spent getting there.
        nn.init.zeros_(self.coarse_fc[-1].weight)
        nn.init.constant_(self.coarse_fc[-1].bias, float(torch.log(torch.tensor((min_depth * max_depth) ** 0.5))))
        self.fine1 = nn.Sequential(_eigen_conv(3, 2 * c - 1, 9, 2), nn.MaxPool2d(2))  # stride 4
        self.fine2 = _eigen_conv(2 * c, 2 * c, 5)
        self.fine3 = nn.Conv2d(2 * c, 1, 5, 1, 2)

    def train_forward(self, image: Tensor) -> dict[str, Tensor]:
        """{"coarse": log depth (B, 1, H/8, W/8), "fine": log depth (B, 1, H/4, W/4)}."""
        x = self.normalize(image)
        coarse = self.coarse_fc(self.coarse_convs(x)).view(-1, 1, self.coarse_h, self.coarse_w)
        up = F.interpolate(coarse, scale_factor=2.0, mode="nearest")
        fine = self.fine3(self.fine2(torch.cat([self.fine1(x), up], 1))) + up
        return {"coarse": coarse, "fine": fine}

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        log_depth = self.train_forward(image)["fine"]
        log_depth = F.interpolate(log_depth, size=(self.height, self.width), mode="bilinear", align_corners=False)
        depth = torch.exp(log_depth).clamp(self.min_depth, self.max_depth)
        return depth, depth_to_normalized_disp(depth, self.min_depth, self.max_depth)

    def io_spec(self) -> dict[str, Any]:
        return _mono_io_spec(self.height, self.width, self.min_depth, self.max_depth)

    def example_inputs(self) -> tuple[Tensor, ...]:
        g = torch.Generator().manual_seed(0)
        return (torch.rand(1, 3, self.height, self.width, generator=g),)

    def deploy_config(self) -> dict[str, Any]:
        return dict(self.config)


@register_model("mono_resnet")
def build_mono_resnet(**config: Any) -> MonoDepthNet:
    return MonoDepthNet(**config)


@register_model("mono_eigen")
def build_mono_eigen(**config: Any) -> EigenNet:
    return EigenNet(**config)
