"""Deep Residual Learning for Image Recognition.

Kaiming He, Xiangyu Zhang, Shaoqing Ren and Jian Sun, CVPR 2016, arXiv:1512.03385.

The ResNets several chapters build on, written so that later papers plug into them:

* :class:`BasicBlock` (two 3 x 3 convolutions) and :class:`Bottleneck` (1 x 1, 3 x 3, 1 x 1)
  compute ``relu(x + F(x))`` (Sec. 3.2, Fig. 2 and 5). Both accept an ``attention`` module
  applied to the residual branch before the addition (Squeeze-and-Excitation, Fig. 3 of that
  paper), a ``dilation`` in place of a stride (DeepLab's atrous convolution) and a
  ``drop_path`` rate (stochastic depth, as in "ResNet strikes back").
* :class:`ShortcutA`: the parameter-free "option A" shortcut of the CIFAR networks (Sec. 4.2):
  subsample and pad the new channels with zeros.
* :class:`ResNet` with :class:`ResNetConfig`, and the builders :func:`resnet50`
  (25,557,032 parameters), :func:`resnet101` (44,549,160) and :func:`resnet_cifar`
  (ResNet-20/32/44/56/110; ResNet-56 has 853,018).

Stride convention: like torchvision (and timm), the bottleneck's stride sits on its 3 x 3
convolution ("ResNet v1.5"); the original Caffe models put it on the first 1 x 1. Parameter
counts are the same; multiply-adds are not (4.09 G against 3.86 G for ResNet-50 at 224 x 224),
which is why papers quote different GFLOPs for "the same" ResNet-50.

Dilation convention: as in torchvision, a stage whose stride is replaced by dilation keeps the
previous dilation in its first block and uses the new one in the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "DropPath",
    "ResNet",
    "ResNetConfig",
    "ShortcutA",
    "resnet50",
    "resnet101",
    "resnet_cifar",
]

AttentionFactory = Callable[[int], nn.Module]  # channels -> module applied to the branch


class DropPath(nn.Module):
    """Stochastic depth: drop a sample's residual branch with probability ``p`` in training.

    Kept branches are scaled by ``1 / (1 - p)`` so the expected output is unchanged; in
    evaluation the module is the identity.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop-path probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device, dtype=x.dtype)
        return x * keep.bernoulli_(1.0 - self.p) / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ShortcutA(nn.Module):
    """Option A of Sec. 4.2: identity with stride-2 subsampling and zero-padded new channels."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError("option A can only add channels")
        self.extra, self.stride = out_channels - in_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]  # (B, C, H/s, W/s)
        return F.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))


class _Block(nn.Module):
    """What both blocks share: ``relu(shortcut(x) + drop_path(attention(F(x))))``."""

    expansion = 1

    def _finish(
        self, out_channels: int, attention: AttentionFactory | None, drop_path: float
    ) -> None:
        self.attention = attention(out_channels) if attention is not None else nn.Identity()
        self.drop_path = DropPath(drop_path)
        self.relu = nn.ReLU(inplace=True)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.drop_path(self.attention(self.residual(x)))
        return self.relu(self.shortcut(x) + branch)


class BasicBlock(_Block):
    """Two 3 x 3 convolutions with batch norm (Fig. 2): ResNet-18/34 and the CIFAR networks.

    Args:
        in_channels: Channels entering the block.
        channels: Channels of both convolutions (and of the output).
        stride: Stride of the first convolution.
        dilation: Dilation of both convolutions.
        shortcut: Module for the shortcut; ``None`` means the identity.
        attention: Factory of a module applied to the branch before the addition.
        drop_path: Stochastic-depth probability of the branch.
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        dilation: int = 1,
        shortcut: nn.Module | None = None,
        attention: AttentionFactory | None = None,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        d = dilation
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, d, d, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, d, d, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = shortcut if shortcut is not None else nn.Identity()
        self._finish(channels, attention, drop_path)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(out))


class Bottleneck(_Block):
    """1 x 1 (reduce), 3 x 3 (stride, dilation), 1 x 1 (expand x4) with batch norm (Fig. 5).

    Args:
        in_channels: Channels entering the block.
        channels: Width of the 3 x 3 convolution; the block outputs ``4 * channels``.
        stride: Stride of the 3 x 3 convolution (torchvision's "v1.5" placement).
        dilation: Dilation of the 3 x 3 convolution.
        shortcut: Module for the shortcut; ``None`` means the identity.
        attention: Factory of a module applied to the branch before the addition.
        drop_path: Stochastic-depth probability of the branch.
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        dilation: int = 1,
        shortcut: nn.Module | None = None,
        attention: AttentionFactory | None = None,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        out = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.shortcut = shortcut if shortcut is not None else nn.Identity()
        self._finish(out, attention, drop_path)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))


@dataclass(frozen=True)
class ResNetConfig:
    """A ResNet's layout; the defaults are ResNet-50 for ImageNet (Table 1)."""

    block: str = "bottleneck"  # "basic" or "bottleneck"
    layers: tuple[int, ...] = (3, 4, 6, 3)  # blocks per stage
    widths: tuple[int, ...] = (64, 128, 256, 512)  # channels of each stage's 3 x 3 convolutions
    num_classes: int = 1000
    in_channels: int = 3
    stem: str = "imagenet"  # 7 x 7 stride-2 convolution + max-pool, or "cifar": one 3 x 3
    stem_channels: int = 64
    shortcut: str = "B"  # "B": 1 x 1 projection where shapes change; "A": parameter-free
    replace_stride_with_dilation: tuple[bool, ...] = (False, False, False)  # stages 2, 3, 4
    attention: AttentionFactory | None = None  # e.g. an SE block, on every residual branch
    drop_path_rate: float = 0.0  # stochastic depth of the last block; rises linearly from 0


class ResNet(nn.Module):
    """Stem, stages of residual blocks, global average pooling, a linear classifier."""

    def __init__(self, config: ResNetConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or ResNetConfig()
        if cfg.block not in ("basic", "bottleneck"):
            raise ValueError(f"block must be 'basic' or 'bottleneck', got {cfg.block!r}")
        if cfg.shortcut not in ("A", "B"):
            raise ValueError(f"shortcut must be 'A' or 'B', got {cfg.shortcut!r}")
        if len(cfg.widths) != len(cfg.layers):
            raise ValueError("widths and layers need one entry per stage")
        if len(cfg.replace_stride_with_dilation) != len(cfg.layers) - 1:
            raise ValueError(
                "replace_stride_with_dilation needs one entry per stage after the first"
            )
        block = Bottleneck if cfg.block == "bottleneck" else BasicBlock
        c = cfg.stem_channels
        if cfg.stem == "imagenet":
            self.stem = nn.Sequential(
                nn.Conv2d(cfg.in_channels, c, 7, 2, 3, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            )
        elif cfg.stem == "cifar":
            self.stem = nn.Sequential(
                nn.Conv2d(cfg.in_channels, c, 3, 1, 1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True),
            )
        else:
            raise ValueError(f"stem must be 'imagenet' or 'cifar', got {cfg.stem!r}")

        total_blocks = sum(cfg.layers)
        index, dilation, in_channels = 0, 1, c
        stages = []
        for stage, (n_blocks, width) in enumerate(zip(cfg.layers, cfg.widths, strict=True)):
            stride = 1 if stage == 0 else 2
            previous_dilation = dilation
            if stage > 0 and cfg.replace_stride_with_dilation[stage - 1]:
                dilation, stride = dilation * stride, 1
            blocks = []
            for i in range(n_blocks):
                out_channels = width * block.expansion
                s = stride if i == 0 else 1
                shortcut = None
                if s != 1 or in_channels != out_channels:
                    shortcut = (
                        ShortcutA(in_channels, out_channels, s)
                        if cfg.shortcut == "A"
                        else nn.Sequential(
                            nn.Conv2d(in_channels, out_channels, 1, s, bias=False),
                            nn.BatchNorm2d(out_channels),
                        )
                    )
                rate = cfg.drop_path_rate * index / max(total_blocks - 1, 1)
                blocks.append(
                    block(
                        in_channels,
                        width,
                        stride=s,
                        dilation=previous_dilation if i == 0 else dilation,
                        shortcut=shortcut,
                        attention=cfg.attention,
                        drop_path=rate,
                    )
                )
                in_channels, index = out_channels, index + 1
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, cfg.num_classes)
        self.out_channels = in_channels
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map before pooling: (B, 3, 224, 224) -> (B, 2048, 7, 7) for ResNet-50."""
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.forward_features(x)).flatten(1))  # (B, num_classes)


def resnet50(num_classes: int = 1000, **overrides) -> ResNet:
    """ResNet-50 (Table 1): stages of 3, 4, 6, 3 bottlenecks; 25,557,032 parameters."""
    return ResNet(ResNetConfig(layers=(3, 4, 6, 3), num_classes=num_classes, **overrides))


def resnet101(num_classes: int = 1000, **overrides) -> ResNet:
    """ResNet-101 (Table 1): stages of 3, 4, 23, 3 bottlenecks; 44,549,160 parameters."""
    return ResNet(ResNetConfig(layers=(3, 4, 23, 3), num_classes=num_classes, **overrides))


def resnet_cifar(depth: int, num_classes: int = 10, **overrides) -> ResNet:
    """The CIFAR-10 ResNets of Sec. 4.2: depth 6n + 2, widths 16, 32, 64, option-A shortcuts.

    ``resnet_cifar(56)`` has 853,018 parameters; ``resnet_cifar(20)``, 269,722.
    """
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNets have depth 6n + 2 (20, 32, 44, 56, 110), got {depth}")
    n = (depth - 2) // 6
    settings = {
        "block": "basic",
        "layers": (n, n, n),
        "widths": (16, 32, 64),
        "stem": "cifar",
        "stem_channels": 16,
        "shortcut": "A",
        "replace_stride_with_dilation": (False, False),
        "num_classes": num_classes,
    }
    settings.update(overrides)
    return ResNet(ResNetConfig(**settings))
