"""Squeeze-and-Excitation Networks.

Jie Hu, Li Shen and Gang Sun, CVPR 2018; journal version with Samuel Albanie and Enhua Wu,
IEEE TPAMI 42(8), 2020. arXiv:1709.01507. Equation, table and figure numbers below are the
journal version's.

What this module implements, in the paper's terms:

* :class:`SEBlock`: the squeeze (global average pooling, Eq. 2), the excitation (two fully
  connected layers around a ReLU, with reduction ratio ``r``, then a sigmoid, Eq. 3) and the
  scale (channel-wise multiplication, Eq. 4) of Sec. 3 and Fig. 1. The gates of the last
  forward pass are kept in :attr:`SEBlock.gates` for inspection (the analysis of Sec. 7.2).
* :func:`se_resnet50`: SE-ResNet-50 of Table 1, an SE block on the residual branch of every
  bottleneck, before the addition (Fig. 3), built on the shared :mod:`initdocs.resnet`.
* :func:`se_resnet_cifar`: the same insertion in the small CIFAR ResNets, for experiments.
* :func:`one_stage_resnet`: a one-block ResNet whose convolutions see only 7 x 7 pixels, with or
  without SE, and :func:`cue_bar_images`, generated strips whose label needs global context: the
  chapter's experiment on the squeeze's global view (Sec. 3.1 and 7.1).
* :func:`extra_parameters`: the parameter overhead of Eq. 5, ``(2/r) sum_s N_s C_s^2``, plus the
  biases of the two layers when they have them.
* :func:`stride_on_first_1x1`: moves a bottleneck's stride from its 3 x 3 convolution to its
  first 1 x 1, the layout of the original Caffe ResNets whose cost the paper quotes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from initdocs.resnet import Bottleneck, ResNet, ResNetConfig, resnet50, resnet_cifar

__all__ = [
    "BAR_GLYPHS",
    "CUE_GLYPHS",
    "SEBlock",
    "cue_bar_images",
    "extra_parameters",
    "one_stage_resnet",
    "se_blocks",
    "se_resnet50",
    "se_resnet_cifar",
    "stride_on_first_1x1",
]


def extra_parameters(
    layers: Sequence[int],
    channels: Sequence[int],
    reduction: int = 16,
    bias: bool = True,
) -> int:
    """Parameters that SE blocks add to a network, by Eq. 5 (plus biases if ``bias``).

    Each block on ``C`` channels has the weights ``W_1`` (``C/r x C``) and ``W_2``
    (``C x C/r``), so ``2 C^2 / r`` in all; with biases it has ``C/r + C`` more.

    Args:
        layers: Blocks per stage, ``N_s`` (ResNet-50: 3, 4, 6, 3).
        channels: Output channels of the blocks of each stage, ``C_s`` (256 ... 2048).
        reduction: The reduction ratio ``r``; must divide every ``C_s``.
        bias: Whether the two fully connected layers have biases.
    """
    if len(layers) != len(channels):
        raise ValueError(f"one N_s per C_s is needed, got {len(layers)} and {len(channels)}")
    total = 0
    for n_s, c_s in zip(layers, channels, strict=True):
        _check_reduction(c_s, reduction)
        hidden = c_s // reduction
        total += n_s * (2 * c_s * hidden + (hidden + c_s if bias else 0))
    return total


def _check_reduction(channels: int, reduction: int) -> None:
    if channels < 1 or reduction < 1:
        raise ValueError(f"channels and reduction must be positive, got {channels}, {reduction}")
    if channels % reduction:
        raise ValueError(
            f"the reduction ratio r={reduction} must divide the channels C={channels} "
            f"(the hidden layer has C/r units)"
        )


class SEBlock(nn.Module):
    """Squeeze, excitation and scale (Sec. 3, Eqs. 2 to 4): ``x_c = s_c * u_c``.

    ``s = sigmoid(W_2 relu(W_1 z))`` where ``z`` is the channel-wise mean of ``u``. The
    paper's equations omit biases; the released models have them, the journal's ablations
    (Sec. 6) remove them. After every forward pass, :attr:`gates` holds ``s``, shape
    ``(B, C)``, detached from the graph.

    Args:
        channels: Channels ``C`` of the feature map ``U`` the block recalibrates.
        reduction: Reduction ratio ``r`` of the bottleneck; must divide ``channels``.
        bias: Whether the two fully connected layers have biases.
    """

    def __init__(self, channels: int, reduction: int = 16, bias: bool = True) -> None:
        super().__init__()
        _check_reduction(channels, reduction)
        self.channels, self.reduction = channels, reduction
        self.fc1 = nn.Linear(channels, channels // reduction, bias=bias)  # W_1: C -> C/r
        self.relu = nn.ReLU()  # delta
        self.fc2 = nn.Linear(channels // reduction, channels, bias=bias)  # W_2: C/r -> C
        self.sigmoid = nn.Sigmoid()  # sigma
        self.gates: torch.Tensor | None = None

    def squeeze(self, u: torch.Tensor) -> torch.Tensor:
        """Eq. 2: ``z_c = (1 / HW) sum_ij u_c(i, j)``; (B, C, H, W) -> (B, C)."""
        return u.mean(dim=(2, 3))

    def excitation(self, z: torch.Tensor) -> torch.Tensor:
        """Eq. 3: ``s = sigmoid(W_2 relu(W_1 z))``; (B, C) -> (B, C/r) -> (B, C)."""
        return self.sigmoid(self.fc2(self.relu(self.fc1(z))))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        if u.dim() != 4 or u.shape[1] != self.channels:
            raise ValueError(
                f"expected a (B, {self.channels}, H, W) feature map, got {tuple(u.shape)}"
            )
        s = self.excitation(self.squeeze(u))  # (B, C), Eqs. 2 and 3
        self.gates = s.detach()
        # Eq. 4: x_c = s_c * u_c, the gate broadcast over the H x W positions.
        return u * s[:, :, None, None]  # (B, C, H, W)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, reduction={self.reduction}"


def se_blocks(model: nn.Module) -> list[SEBlock]:
    """The SE blocks of ``model`` in forward order (stage by stage, block by block)."""
    return [m for m in model.modules() if isinstance(m, SEBlock)]


def stride_on_first_1x1(model: ResNet) -> ResNet:
    """Move each strided bottleneck's stride from its 3 x 3 to its first 1 x 1, in place.

    This is the layout of the original Caffe ResNets ("v1"), for which the SE paper quotes
    3.86 GFLOPs (Sec. 4); the shared ResNet follows torchvision ("v1.5", stride on the 3 x 3).
    Parameters and output shapes do not change, only where the resolution drops.

    Args:
        model: A bottleneck ResNet, such as :func:`se_resnet50` or ``resnet50``.
    """
    blocks = [m for m in model.modules() if isinstance(m, Bottleneck)]
    if not blocks:
        raise ValueError("the model has no bottleneck blocks to change")
    for block in blocks:
        if block.conv2.stride != (1, 1):
            block.conv1.stride, block.conv2.stride = block.conv2.stride, (1, 1)
    return model


def se_resnet50(num_classes: int = 1000, reduction: int = 16, bias: bool = True) -> ResNet:
    """SE-ResNet-50 (Table 1): 28,088,024 parameters at ``r = 16`` with biases.

    ResNet-50 has 25,557,032; the SE blocks add 2,514,944 weights (Eq. 5) and 16,048 biases.
    """
    return resnet50(num_classes=num_classes, attention=lambda c: SEBlock(c, reduction, bias))


def se_resnet_cifar(
    depth: int,
    num_classes: int = 10,
    reduction: int = 4,
    bias: bool = True,
    **overrides,
) -> ResNet:
    """A CIFAR ResNet (He et al., Sec. 4.2) with an SE block on every residual branch.

    The stages are 16, 32 and 64 channels wide, so the default ratio is ``r = 4`` rather
    than the paper's 16 (which would leave a single hidden unit in the first stage).
    ``overrides`` go to :class:`initdocs.resnet.ResNetConfig` (e.g. ``in_channels=1``).

    Args:
        depth: 6n + 2 layers (8, 14, 20, ...).
        num_classes: Outputs of the classifier.
        reduction: Reduction ratio ``r``; must divide every stage's width.
        bias: Whether the excitation's two layers have biases.
    """
    return resnet_cifar(
        depth,
        num_classes=num_classes,
        attention=lambda c: SEBlock(c, reduction, bias),
        **overrides,
    )


def one_stage_resnet(
    width: int = 16,
    reduction: int | None = 4,
    in_channels: int = 1,
    num_classes: int = 2,
) -> ResNet:
    """A 3 x 3 stem and one basic residual block, then global pooling and a linear classifier.

    Every feature before the pooling sees a 7 x 7 window of the input (three 3 x 3
    convolutions), so the only global step of the plain network is the final average; with
    ``reduction`` set, the block's SE squeeze is a second one, inside the network.

    Args:
        width: Channels of the stem and of the block.
        reduction: SE reduction ratio ``r``, or ``None`` for the plain network.
        in_channels: Channels of the input images.
        num_classes: Outputs of the classifier.
    """
    attention = None if reduction is None else (lambda c: SEBlock(c, reduction))
    config = ResNetConfig(
        block="basic",
        layers=(1,),
        widths=(width,),
        num_classes=num_classes,
        in_channels=in_channels,
        stem="cifar",
        stem_channels=width,
        replace_stride_with_dilation=(),
        attention=attention,
    )
    return ResNet(config)


#: The two cue glyphs (3 x 3): a plus and a cross. They sit at the left end of a strip.
CUE_GLYPHS = torch.tensor(
    [[[0, 1, 0], [1, 1, 1], [0, 1, 0]], [[1, 0, 1], [0, 1, 0], [1, 0, 1]]], dtype=torch.float32
)
#: The two bar glyphs (3 x 3): horizontal and vertical. They sit at the right end.
BAR_GLYPHS = torch.tensor(
    [[[0, 0, 0], [1, 1, 1], [0, 0, 0]], [[0, 1, 0], [0, 1, 0], [0, 1, 0]]], dtype=torch.float32
)


def cue_bar_images(
    n: int,
    seed: int = 0,
    height: int = 8,
    width: int = 16,
    noise: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Strips with a cue on the left and a bar on the right: the cue says which bar is class 1.

    The cue (plus or cross) starts in column 0, 1 or 2, the bar (horizontal or vertical) in
    column ``width - 5``, ``width - 4`` or ``width - 3``, each at a random row. The label is 1
    for (plus, horizontal) and (cross, vertical), else 0: an exclusive or of the two glyphs.
    With ``width >= 16`` no 7 x 7 window touches both glyphs, so for a network that only pools
    at the end each logit is a *sum* of a cue term and a bar term, and a sum gets at most three
    of the four combinations right.

    Args:
        n: Number of images.
        seed: Seed of the generator (images, glyph choices and positions).
        height: Rows of each strip (at least 3).
        width: Columns of each strip (at least 16).
        noise: Standard deviation of the Gaussian pixel noise added everywhere.

    Returns:
        Images ``(n, 1, height, width)``, labels ``(n,)`` and the glyph choices ``(n, 2)``
        (cue, bar), each 0 or 1.
    """
    if n < 0 or height < 3 or width < 16 or noise < 0:
        raise ValueError(
            "need n >= 0, height >= 3, width >= 16 and noise >= 0, "
            f"got n={n}, height={height}, width={width}, noise={noise}"
        )
    g = torch.Generator().manual_seed(seed)
    glyphs = torch.randint(2, (n, 2), generator=g)  # (n, 2): cue, bar
    rows = torch.randint(height - 2, (n, 2), generator=g)
    cols = torch.stack(
        [
            torch.randint(0, 3, (n,), generator=g),
            torch.randint(width - 5, width - 2, (n,), generator=g),
        ],
        dim=1,
    )
    x = torch.zeros(n, 1, height, width)
    for i in range(n):
        for k, bank in enumerate((CUE_GLYPHS, BAR_GLYPHS)):
            r, c = rows[i, k], cols[i, k]
            x[i, 0, r : r + 3, c : c + 3] = bank[glyphs[i, k]]
    x += noise * torch.randn(x.shape, generator=g)
    y = (glyphs[:, 0] == glyphs[:, 1]).long()  # plus & horizontal, or cross & vertical
    return x, y, glyphs
