"""ResNet-18/34 encoders of our own (torchvision is not a dependency), shared by the mono, pose and completion nets.

He et al. 2016 basic-block ResNets as monodepth2 uses them: the stem (7x7 stride-2 convolution, BN, ReLU)
is the stride-2 feature, then max-pool and the four stages give strides 4, 8, 16, 32. `width` scales every
stage (64 = the paper's network; 32 = a narrow variant for embedded engines). Inputs are expected already
normalized (`ImageNormalize` does the ImageNet mean/std inside a graph).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


class ImageNormalize(nn.Module):
    """RGB / 255 in [0, 1] -> ImageNet-normalized; repeated for inputs with several stacked RGB frames."""

    def __init__(self, frames: int = 1) -> None:
        super().__init__()
        mean = torch.tensor(IMAGENET_MEAN * frames).view(1, 3 * frames, 1, 1)
        std = torch.tensor(IMAGENET_STD * frames).view(1, 3 * frames, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual; a 1x1 projection when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNetEncoder(nn.Module):
    """ResNet-18/34 feature pyramid: `forward(x)` -> [f2, f4, f8, f16, f32] (strides 2 ... 32).

    `num_ch_enc` lists the channels of those five maps: (w, w, 2w, 4w, 8w) for base width w.
    `in_channels` = 6 for the pose network's stacked frame pair.
    """

    def __init__(self, layers: int = 18, width: int = 64, in_channels: int = 3,
                 zero_init_residual: bool = True) -> None:
        super().__init__()
        if layers not in _BLOCKS:
            raise ValueError(f"layers must be one of {sorted(_BLOCKS)}, got {layers}")
        if width < 4 or width % 4:
            raise ValueError(f"width must be a positive multiple of 4, got {width}")
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        self.layers, self.width, self.in_channels = layers, width, in_channels
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        chans = [width, width, 2 * width, 4 * width, 8 * width]
        stages = []
        cin = width
        for i, n in enumerate(_BLOCKS[layers]):
            cout = chans[i + 1]
            blocks = [BasicBlock(cin, cout, 1 if i == 0 else 2)] + [BasicBlock(cout, cout) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.num_ch_enc: list[int] = chans
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool = True) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # Zero-init the last BN of each residual branch: every block starts as the identity (Goyal et al. 2017),
        # which trains from scratch faster without ImageNet weights. False: torchvision's standard init.
        if not zero_init_residual:
            return
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x: Tensor) -> list[Tensor]:
        f2 = self.relu(self.bn1(self.conv1(x)))
        f4 = self.layer1(self.maxpool(f2))
        f8 = self.layer2(f4)
        f16 = self.layer3(f8)
        f32 = self.layer4(f16)
        return [f2, f4, f8, f16, f32]
