"""Xception: Deep Learning with Depthwise Separable Convolutions.

François Chollet, CVPR 2017, arXiv:1610.02357.

What this module implements, in the paper's terms:

* :class:`SeparableConv2d`: a depthwise separable convolution (Sec. 2 and Fig. 4): a spatial
  k x k convolution applied to each input channel on its own (depthwise), then a 1 x 1
  convolution that mixes channels (pointwise), with no nonlinearity in between (the paper's
  ablation, Fig. 10, found that an intermediate ReLU or ELU hurts).
* :class:`XceptionBlock`: one module of Fig. 5: ReLU -> SeparableConv -> BN, repeated, plus a
  linear residual connection (a strided 1 x 1 convolution where the shape changes).
* :class:`Xception`: the entry flow, the middle flow (repeated 8 times) and the exit flow of
  Fig. 5; :func:`xception` is the ImageNet model of Table 3 (22,855,952 parameters).
* :func:`tiny_xception`: the same architecture scaled down for 8 x 8 digits; with
  ``separable=False`` every separable convolution becomes a regular one, for comparisons.
* :func:`widest_within`: the widest tiny network that fits a parameter budget, to compare
  the two kinds of convolution at (nearly) the same number of parameters, as the paper
  compares Xception with Inception V3 (Sec. 4.5 and Table 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from initdocs.counting import count_parameters

__all__ = [
    "SeparableConv2d",
    "Xception",
    "XceptionBlock",
    "XceptionConfig",
    "tiny_xception",
    "widest_within",
    "xception",
]


class SeparableConv2d(nn.Module):
    """Depthwise k x k convolution followed by a pointwise 1 x 1 convolution (Sec. 2).

    For input channels ``c`` and output channels ``o`` the layer computes
    ``y_o = sum_c P[o, c] * (D[c] * x_c)``: it is the regular convolution whose kernel is
    constrained to the product ``W[o, c] = P[o, c] * D[c]`` (see :meth:`equivalent_kernel`).
    Parameters: ``k*k*C_in + C_in*C_out`` instead of ``k*k*C_in*C_out``.

    Args:
        in_channels: Channels of the input, ``C_in``.
        out_channels: Channels of the output, ``C_out``.
        kernel_size: Spatial size ``k`` of the depthwise filters.
        stride: Stride of the depthwise convolution.
        padding: Zero padding of the depthwise convolution.
        dilation: Dilation of the depthwise convolution.
        bias: Whether the pointwise convolution has a bias (Xception's do not: BN follows).
        mid_activation: Optional nonlinearity between the two steps (the paper's ablation).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        dilation: int = 1,
        bias: bool = False,
        mid_activation: nn.Module | None = None,
    ) -> None:
        super().__init__()
        # groups=in_channels: one k x k filter per input channel, no mixing across channels.
        self.depthwise = nn.Conv2d(
            in_channels,
            in_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=in_channels,
            bias=False,
        )
        self.mid_activation = mid_activation if mid_activation is not None else nn.Identity()
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C_in, H, W) -> (B, C_in, H', W') -> (B, C_out, H', W')
        return self.pointwise(self.mid_activation(self.depthwise(x)))

    def equivalent_kernel(self) -> torch.Tensor:
        """The regular convolution kernel this layer equals, shape ``(C_out, C_in, k, k)``.

        ``W[o, c, i, j] = P[o, c] * D[c, i, j]``. Only meaningful without a mid activation.
        """
        if not isinstance(self.mid_activation, nn.Identity):
            raise ValueError("with a nonlinearity between the two steps there is no single kernel")
        depthwise = self.depthwise.weight[:, 0]  # (C_in, k, k)
        pointwise = self.pointwise.weight[:, :, 0, 0]  # (C_out, C_in)
        return pointwise[:, :, None, None] * depthwise[None]  # (C_out, C_in, k, k)


def _conv3x3(in_channels: int, out_channels: int, separable: bool) -> nn.Module:
    """The 3 x 3 convolution of a block: separable (the paper) or regular (for comparison)."""
    if separable:
        return SeparableConv2d(in_channels, out_channels, 3, padding=1)
    return nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)


class XceptionBlock(nn.Module):
    """One module of Fig. 5: ``len(channels)`` x (ReLU, SeparableConv 3 x 3, BN) + shortcut.

    With ``stride=2`` the module ends with a 3 x 3 max-pool of stride 2 and its shortcut is a
    1 x 1 convolution of stride 2 followed by BN (entry and exit flows); otherwise the
    shortcut is the identity (middle flow). The residual connections are linear: nothing is
    applied after the addition (the next module starts with its own ReLU).

    Args:
        in_channels: Channels entering the module.
        channels: Output channels of each separable convolution, in order.
        stride: 1 (keep the size) or 2 (halve it with max-pooling).
        first_relu: Whether to start with a ReLU (the very first module after the stem
            does not: its input has just been through one).
        separable: Use separable convolutions (the paper) or regular ones.
    """

    def __init__(
        self,
        in_channels: int,
        channels: Sequence[int],
        stride: int = 1,
        first_relu: bool = True,
        separable: bool = True,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        if not channels:
            raise ValueError("a block needs at least one convolution")
        layers: list[nn.Module] = []
        c_in = in_channels
        for i, c_out in enumerate(channels):
            if i > 0 or first_relu:
                layers.append(nn.ReLU())
            layers += [_conv3x3(c_in, c_out, separable), nn.BatchNorm2d(c_out)]
            c_in = c_out
        if stride == 2:
            layers.append(nn.MaxPool2d(3, stride=2, padding=1))
        self.residual = nn.Sequential(*layers)
        out_channels = channels[-1]
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)


@dataclass(frozen=True)
class XceptionConfig:
    """Widths and depths of an Xception network; the defaults are the paper's (Fig. 5)."""

    in_channels: int = 3
    num_classes: int = 1000
    stem_channels: tuple[int, int] = (32, 64)
    stem_stride: int = 2  # the first convolution has stride 2; both use no padding
    stem_padding: int = 0
    entry_channels: tuple[int, ...] = (128, 256, 728)  # one strided module per entry
    middle_repeats: int = 8  # middle flow: modules of three convolutions at entry_channels[-1]
    exit_channels: tuple[int, int] = (728, 1024)  # the strided module of the exit flow
    tail_channels: tuple[int, int] = (1536, 2048)  # the two separable convolutions before GAP
    dropout: float = 0.0  # the paper trains with 0.5 before the classifier (Sec. 4.3)
    separable: bool = True  # False swaps every SeparableConv2d for a regular convolution


class Xception(nn.Module):
    """Entry flow -> middle flow -> exit flow -> global average pooling -> classifier (Fig. 5)."""

    def __init__(self, config: XceptionConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or XceptionConfig()
        c1, c2 = cfg.stem_channels
        stem = [
            nn.Conv2d(cfg.in_channels, c1, 3, cfg.stem_stride, cfg.stem_padding, bias=False),
            nn.BatchNorm2d(c1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, 1, cfg.stem_padding, bias=False),
            nn.BatchNorm2d(c2),
            nn.ReLU(),
        ]
        entry: list[nn.Module] = []
        c_in = c2
        for i, c_out in enumerate(cfg.entry_channels):
            entry.append(XceptionBlock(c_in, (c_out, c_out), 2, i > 0, cfg.separable))
            c_in = c_out
        self.entry_flow = nn.Sequential(*stem, *entry)
        self.middle_flow = nn.Sequential(
            *(
                XceptionBlock(c_in, (c_in,) * 3, 1, True, cfg.separable)
                for _ in range(cfg.middle_repeats)
            )
        )
        t1, t2 = cfg.tail_channels
        self.exit_flow = nn.Sequential(
            XceptionBlock(c_in, cfg.exit_channels, 2, True, cfg.separable),
            _conv3x3(cfg.exit_channels[-1], t1, cfg.separable),
            nn.BatchNorm2d(t1),
            nn.ReLU(),
            _conv3x3(t1, t2, cfg.separable),
            nn.BatchNorm2d(t2),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(t2, cfg.num_classes)  # the paper's "logistic regression" layer

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map before pooling; (B, 3, 299, 299) -> (B, 2048, 10, 10) in the paper."""
        return self.exit_flow(self.middle_flow(self.entry_flow(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.pool(self.forward_features(x)).flatten(1)  # (B, C)
        return self.fc(self.dropout(features))  # (B, num_classes)


def xception(num_classes: int = 1000) -> Xception:
    """The paper's ImageNet model (Fig. 5, Table 3): 22,855,952 parameters with 1000 classes."""
    return Xception(XceptionConfig(num_classes=num_classes))


def tiny_xception(width: int = 16, separable: bool = True, num_classes: int = 10) -> Xception:
    """Xception's layout shrunk for 1 x 8 x 8 digits.

    The stem keeps the resolution (stride 1, padding 1), two entry modules and the exit module
    halve it (8 -> 4 -> 2 -> 1), and two middle modules sit in between. Channel widths are
    multiples of ``width``. With ``separable=False`` the same network uses regular 3 x 3
    convolutions, which is the comparison the chapter's experiment makes.
    """
    if width < 1:
        raise ValueError(f"width must be positive, got {width}")
    w = width
    return Xception(
        XceptionConfig(
            in_channels=1,
            num_classes=num_classes,
            stem_channels=(w, 2 * w),
            stem_stride=1,
            stem_padding=1,
            entry_channels=(2 * w, 4 * w),
            middle_repeats=2,
            exit_channels=(4 * w, 6 * w),
            tail_channels=(8 * w, 10 * w),
            separable=separable,
        )
    )


def widest_within(budget: int, separable: bool = True, num_classes: int = 10) -> int:
    """The largest ``width`` whose :func:`tiny_xception` has at most ``budget`` parameters.

    The paper's claim is about parameter efficiency: Xception and Inception V3 have about the
    same number of parameters (Table 3). This finds the network of the other kind that fits
    the same budget, so that two networks are compared at equal size rather than equal width.
    """
    if count_parameters(tiny_xception(1, separable, num_classes)) > budget:
        raise ValueError(f"no tiny_xception fits in {budget} parameters")
    width = 1
    while count_parameters(tiny_xception(width + 1, separable, num_classes)) <= budget:
        width += 1
    return width
