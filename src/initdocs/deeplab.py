"""DeepLab: Semantic Image Segmentation with Deep Convolutional Nets, Atrous Convolution, and
Fully Connected CRFs.

Liang-Chieh Chen, George Papandreou, Iasonas Kokkinos, Kevin Murphy and Alan L. Yuille,
IEEE TPAMI 40(4), 2018, arXiv:1606.00915 ("DeepLabv2").

What this module implements, in the paper's terms:

* Atrous convolution (Sec. 3.1, Eq. 1): :func:`effective_kernel_size`,
  :func:`receptive_field` and :func:`atrous_footprint` (field of view and the gridding pattern
  of stacked rates), and :func:`atrous_by_subsampling`, which computes a rate-``r``
  convolution as ``r * r`` ordinary convolutions of the subsampled image, interleaved.
* :class:`ASPP`: atrous spatial pyramid pooling (Sec. 3.2): parallel branches with
  different rates whose class scores are fused by summation. A one-branch ASPP with the VGG
  branch (fc6, fc7, fc8) is DeepLab-LargeFOV.
* :class:`DeepLabV2` with the builders :func:`deeplabv2_resnet101` (ResNet-101 at output
  stride 8 with the ASPP-L head, Sec. 4.1) and :func:`deeplab_vgg16` (the VGG-16 variants of
  the field-of-view table, Table 1: 134.3M / 65.1M / 20.5M parameters), and :func:`tiny_deeplab`, a
  small network for the chapter's experiment.
* :func:`poly_lr`: the "poly" learning-rate policy (Sec. 4.1).
* :class:`DenseCRF`: the fully connected CRF of Sec. 3.3 (Eq. 2-3, Gaussian appearance and
  smoothness kernels, Potts compatibility) with naive O(N^2) mean-field inference, for tiny
  images; :func:`mean_iou` and :func:`boundary_mask` (a band around object boundaries).

The chapter's data are :func:`initdocs.data.make_shapes`, grey squares, discs and triangles
with their masks (:data:`SHAPE_CLASSES` names the classes).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from initdocs.resnet import resnet101

__all__ = [
    "ASPP",
    "SHAPE_CLASSES",
    "CRFResult",
    "DeepLabV2",
    "DenseCRF",
    "ScoreBranch",
    "atrous_by_subsampling",
    "atrous_footprint",
    "boundary_mask",
    "deeplab_vgg16",
    "deeplabv2_resnet101",
    "effective_kernel_size",
    "mean_iou",
    "poly_lr",
    "receptive_field",
    "tiny_deeplab",
]

#: The classes of :func:`initdocs.data.make_shapes` as the chapter draws them (aspect ratio 1).
SHAPE_CLASSES = ("background", "square", "disc", "triangle")


# -- Atrous convolution (Sec. 3.1) ---------------------------------------------------------


def effective_kernel_size(kernel_size: int, rate: int) -> int:
    """Span of a ``k``-tap filter with ``r - 1`` zeros between taps: ``k + (k - 1)(r - 1)``."""
    if kernel_size < 1 or rate < 1:
        raise ValueError(f"kernel size and rate must be >= 1, got {kernel_size} and {rate}")
    return kernel_size + (kernel_size - 1) * (rate - 1)


def receptive_field(
    kernel_sizes: Sequence[int], rates: Sequence[int], strides: Sequence[int] | None = None
) -> int:
    """Receptive field (pixels) of a stack of convolutions: ``1 + sum_l (k_eff,l - 1) * J_l``.

    ``J_l`` is the product of the strides of the layers before layer ``l``.

    Args:
        kernel_sizes: Kernel size of each layer.
        rates: Atrous rate (dilation) of each layer.
        strides: Stride of each layer; all 1 when omitted.
    """
    strides = [1] * len(kernel_sizes) if strides is None else list(strides)
    if not len(kernel_sizes) == len(rates) == len(strides):
        raise ValueError("kernel_sizes, rates and strides need one entry per layer")
    field, jump = 1, 1
    for k, r, s in zip(kernel_sizes, rates, strides, strict=True):
        field += (effective_kernel_size(k, r) - 1) * jump
        jump *= s
    return field


def atrous_footprint(rates: Sequence[int], kernel_size: int = 3) -> np.ndarray:
    """How many paths join each input pixel to one output of stacked atrous convolutions.

    All filters are ones, so entry ``(i, j)`` counts the routes from input ``(i, j)`` to the
    centre output. Zeros inside the square are pixels the output never sees: the gridding
    effect of repeating one rate. Shape ``(R, R)`` with ``R`` the receptive field.
    """
    if not rates:
        raise ValueError("need at least one rate")
    footprint = torch.ones(1, 1, 1, 1, dtype=torch.float64)
    for r in rates:
        ones = torch.ones(1, 1, kernel_size, kernel_size, dtype=torch.float64)
        # A "full" convolution with the dilated all-ones filter spreads every path r apart.
        footprint = F.conv2d(footprint, ones, padding=(kernel_size - 1) * r, dilation=r)
    return footprint[0, 0].round().long().numpy()


def atrous_by_subsampling(x: torch.Tensor, weight: torch.Tensor, rate: int) -> torch.Tensor:
    """Rate-``r`` convolution (no padding) computed without dilation (Sec. 3.1).

    Output position ``(r m + p, r n + q)`` only reads input pixels of the same phase
    ``(p, q)``, so the subsampled image ``x[..., p::r, q::r]`` convolved with the *undilated*
    kernel gives every ``r``-th output of that phase. The ``r * r`` phases, interleaved, give
    exactly ``F.conv2d(x, weight, dilation=r)``. "Downsample, convolve, upsample" computes only
    the phase ``(0, 0)`` and interpolates the rest.

    Args:
        x: Input of shape ``(B, C_in, H, W)``.
        weight: Kernel of shape ``(C_out, C_in, k, k)``.
        rate: Atrous rate ``r``.
    """
    if rate < 1:
        raise ValueError(f"rate must be >= 1, got {rate}")
    k = weight.shape[-1]
    span = effective_kernel_size(k, rate)
    B, _, H, W = x.shape
    H_out, W_out = H - span + 1, W - span + 1
    if H_out < 1 or W_out < 1:
        raise ValueError(f"input {H}x{W} is smaller than the filter's span {span}")
    out = x.new_zeros(B, weight.shape[0], H_out, W_out)  # (B, C_out, H_out, W_out)
    for p in range(min(rate, H_out)):
        for q in range(min(rate, W_out)):
            phase = F.conv2d(x[..., p::rate, q::rate], weight)  # ordinary convolution
            rows, cols = out[..., p::rate, q::rate].shape[-2:]
            out[..., p::rate, q::rate] = phase[..., :rows, :cols]
    return out


# -- Learning-rate policy (Sec. 4.1) -------------------------------------------------------


def poly_lr(base_lr: float, iteration: int, max_iter: int, power: float = 0.9) -> float:
    """The "poly" policy: ``base_lr * (1 - iteration / max_iter) ** power``."""
    if max_iter < 1 or not 0 <= iteration <= max_iter:
        raise ValueError(f"need 0 <= iteration <= max_iter, got {iteration} and {max_iter}")
    return base_lr * (1.0 - iteration / max_iter) ** power


# -- Heads: LargeFOV and ASPP (Sec. 3.2) ----------------------------------------------------


class ScoreBranch(nn.Module):
    """One branch of class scores from a feature map.

    Without ``hidden_channels`` it is one ``k x k`` atrous convolution to the classes (the
    ResNet-101 ASPP). With it, it is the VGG head: fc6 (``k x k``, rate ``r``), ReLU, dropout,
    fc7 (1 x 1), ReLU, dropout, fc8 (1 x 1 to the classes).

    Args:
        in_channels: Channels of the feature map.
        num_classes: Number of classes (output channels).
        kernel_size: Kernel size ``k`` of the atrous convolution (fc6).
        rate: Atrous rate ``r``.
        hidden_channels: Width of fc6 and fc7; ``None`` for a single convolution.
        dropout: Dropout probability after fc6 and fc7.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        kernel_size: int = 3,
        rate: int = 1,
        hidden_channels: int | None = None,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        span = (kernel_size - 1) * rate
        if span % 2:
            raise ValueError(
                f"(k - 1) * r must be even to keep the size, got k={kernel_size}, r={rate}"
            )
        pad = span // 2
        if hidden_channels is None:
            self.layers = nn.Sequential(
                nn.Conv2d(in_channels, num_classes, kernel_size, padding=pad, dilation=rate)
            )
        else:
            c = hidden_channels
            self.layers = nn.Sequential(
                nn.Conv2d(in_channels, c, kernel_size, padding=pad, dilation=rate),  # fc6
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
                nn.Conv2d(c, c, 1),  # fc7
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
                nn.Conv2d(c, num_classes, 1),  # fc8
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # (B, C, H, W) -> (B, num_classes, H, W)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (Sec. 3.2): ``scores = sum_r branch_r(features)``.

    ASPP-L uses rates (6, 12, 18, 24), ASPP-S (2, 4, 8, 12); a single rate is LargeFOV.

    Args:
        in_channels: Channels of the feature map.
        num_classes: Number of classes.
        rates: One atrous rate per branch.
        kernel_size: Kernel size of each branch's atrous convolution.
        hidden_channels: ``None`` for one convolution per branch (ResNet), else the width of
            the fc6/fc7 layers of each branch (VGG, 1024 in the paper).
        dropout: Dropout after fc6 and fc7 (VGG branches only).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        rates: Sequence[int] = (6, 12, 18, 24),
        kernel_size: int = 3,
        hidden_channels: int | None = None,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if not rates or any(r < 1 for r in rates):
            raise ValueError(f"rates must be a non-empty sequence of integers >= 1, got {rates}")
        self.rates = tuple(rates)
        self.branches = nn.ModuleList(
            ScoreBranch(in_channels, num_classes, kernel_size, r, hidden_channels, dropout)
            for r in self.rates
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Fusion by sum (Sec. 3.2): every branch sees the same features at its own rate.
        out = self.branches[0](x)
        for branch in self.branches[1:]:
            out = out + branch(x)
        return out  # (B, num_classes, H, W)


# -- The model and its named configurations -------------------------------------------------


class DeepLabV2(nn.Module):
    """A backbone that keeps resolution with atrous convolution, then a score head.

    :meth:`score_map` returns the coarse scores (``ceil(H / output_stride)`` per side);
    :meth:`forward` upsamples them bilinearly to the input size, as DeepLab does at test time.

    Args:
        backbone: Module mapping images to features at ``1 / output_stride`` resolution.
        head: Module mapping features to class scores (:class:`ASPP`).
        output_stride: Ratio of input to feature-map resolution.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, output_stride: int) -> None:
        super().__init__()
        self.backbone, self.head, self.output_stride = backbone, head, output_stride

    def score_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))  # (B, classes, H / OS, W / OS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = self.score_map(x)
        return F.interpolate(scores, size=x.shape[-2:], mode="bilinear", align_corners=False)


class _ResNetFeatures(nn.Module):
    """The stem and stages of an :class:`initdocs.resnet.ResNet`, without pooling and fc."""

    def __init__(self, resnet: nn.Module) -> None:
        super().__init__()
        self.stem, self.stages = resnet.stem, resnet.stages

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x  # (B, 2048, H / 8, W / 8) with the last two stages dilated


def deeplabv2_resnet101(num_classes: int = 21, rates: Sequence[int] = (6, 12, 18, 24)) -> DeepLabV2:
    """DeepLab-ASPP on ResNet-101 at output stride 8 (Sec. 4.1): 321 x 321 -> 41 x 41 scores.

    conv4 (stage 3) and conv5 (stage 4) trade their stride for dilation 2 and 4, in
    torchvision's convention (the first block of a dilated stage keeps the previous rate; the
    authors' released models use the new rate in every block of the stage).
    Each ASPP branch is one 3 x 3 convolution from 2048 channels to the classes.
    """
    resnet = resnet101(replace_stride_with_dilation=(False, True, True))
    return DeepLabV2(_ResNetFeatures(resnet), ASPP(2048, num_classes, rates), output_stride=8)


def _vgg16_features(in_channels: int = 3) -> nn.Sequential:
    """VGG-16 conv1_1 ... conv5_3 as DeepLab uses it: output stride 8.

    pool1-3 are 3 x 3 with stride 2; pool4 and pool5 keep stride 1, so conv5 runs at rate 2.
    """
    layers: list[nn.Module] = []
    c = in_channels
    for stage, widths in enumerate(((64, 64), (128, 128), (256,) * 3, (512,) * 3, (512,) * 3)):
        d = 2 if stage == 4 else 1
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, padding=d, dilation=d), nn.ReLU(inplace=True)]
            c = w
        layers.append(nn.MaxPool2d(3, stride=2 if stage < 3 else 1, padding=1))
    return nn.Sequential(*layers)


def deeplab_vgg16(
    num_classes: int = 21,
    fc6_kernel: int = 3,
    fc6_rate: int = 12,
    fc6_channels: int = 1024,
    aspp_rates: Sequence[int] | None = None,
) -> DeepLabV2:
    """DeepLab on VGG-16 at output stride 8, the rows of the paper's Table 1 (field of view).

    The defaults are DeepLab-LargeFOV (3 x 3, rate 12, 1024 channels: 20.5M parameters);
    ``fc6_kernel=7, fc6_rate=4, fc6_channels=4096`` is the first row (134.3M) and
    ``fc6_kernel=4, fc6_rate=4 or 8, fc6_channels=4096`` the 65.1M rows. With ``aspp_rates``
    the head is DeepLab-ASPP: one fc6-fc7-fc8 branch per rate, summed.
    """
    rates = (fc6_rate,) if aspp_rates is None else tuple(aspp_rates)
    head = ASPP(512, num_classes, rates, kernel_size=fc6_kernel, hidden_channels=fc6_channels)
    return DeepLabV2(_vgg16_features(), head, output_stride=8)


def _conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)
    )


def tiny_deeplab(
    rates: Sequence[int] = (1, 2, 4, 6),
    width: int = 16,
    num_classes: int = len(SHAPE_CLASSES),
    in_channels: int = 1,
) -> DeepLabV2:
    """A small DeepLab for the chapter's shapes: three convolutions to output stride 4, then
    an ASPP head of VGG-style branches (fc6 rate ``r``, fc7, fc8) of width ``2 * width``."""
    if width < 1:
        raise ValueError(f"width must be positive, got {width}")
    w = width
    backbone = nn.Sequential(
        _conv_bn_relu(in_channels, w), _conv_bn_relu(w, 2 * w, 2), _conv_bn_relu(2 * w, 2 * w, 2)
    )
    head = ASPP(2 * w, num_classes, rates, hidden_channels=2 * w, dropout=0.0)
    return DeepLabV2(backbone, head, output_stride=4)


# -- Fully connected CRF (Sec. 3.3) ---------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _position_factor(H: int, W: int, sigma: float) -> torch.Tensor:
    """``exp(-|p_i - p_j|^2 / 2 sigma^2)`` for all pairs of positions of an ``H x W`` grid.

    Shape ``(N, N)``, float64. Cached, because every image of the same size shares it; do not
    modify the returned tensor in place.
    """
    ys, xs = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    y, x = ys.flatten().double(), xs.flatten().double()  # (N,)
    d_p = (y[:, None] - y[None]).square() + (x[:, None] - x[None]).square()
    return torch.exp(-d_p / (2 * sigma**2))


@dataclass(frozen=True)
class CRFResult:
    """What :meth:`DenseCRF.infer` returns: final marginals, labels, energy per iteration."""

    marginals: torch.Tensor  # (L, H, W)
    labels: torch.Tensor  # (H, W)
    energies: list[float]  # mean-field free energy before and after every iteration


@dataclass(frozen=True)
class DenseCRF:
    """Fully connected CRF with Potts compatibility and two Gaussian kernels (Eq. 2-3).

    ``E(x) = sum_i -log P(x_i) + sum_{i<j} [x_i != x_j] k(i, j)`` with
    ``k(i, j) = w1 exp(-|p_i-p_j|^2/2 s_alpha^2 - |I_i-I_j|^2/2 s_beta^2)
    + w2 exp(-|p_i-p_j|^2/2 s_gamma^2)``: pixels close in position *and* intensity
    (appearance kernel), or just close (smoothness kernel), pay to take different labels.
    Inference is mean field with the full N x N kernel matrix: for tiny images only.
    """

    # Defaults for the chapter's 32 x 32 shapes (positions in pixels, grey values of the
    # image), picked by a grid search on validation images; the paper's are for VOC photos.
    w1: float = 1.0
    w2: float = 0.3
    sigma_alpha: float = 2.0
    sigma_beta: float = 0.2
    sigma_gamma: float = 1.0

    def kernel(self, image: torch.Tensor) -> torch.Tensor:
        """The ``(N, N)`` matrix ``k(i, j)`` of an image ``(C, H, W)``, zero on the diagonal."""
        C, H, W = image.shape
        f = image.reshape(C, H * W).double()  # (C, N) intensities
        d_f = sum((f[c, :, None] - f[c, None, :]).square() for c in range(C))  # (N, N)
        # exp(-a - b) = exp(-a) exp(-b): the position factors depend on the grid only (cached).
        k = torch.exp(d_f.mul_(-1 / (2 * self.sigma_beta**2)))
        k.mul_(_position_factor(H, W, self.sigma_alpha)).mul_(self.w1)
        k.add_(_position_factor(H, W, self.sigma_gamma), alpha=self.w2)
        return k.fill_diagonal_(0.0)

    @staticmethod
    def energy(
        Q: torch.Tensor,
        unary: torch.Tensor,
        K: torch.Tensor,
        message: torch.Tensor | None = None,
        total: float | None = None,
    ) -> float:
        """Mean-field free energy ``E_Q[E(x)] - H(Q)`` of marginals ``Q`` (N, L).

        The expected Potts term is ``sum_{i<j} k(i, j) (1 - sum_l Q_il Q_jl)``. Its minimum
        over factorized ``Q`` is what mean field approximates; for one-hot ``Q`` it is ``E(x)``.
        ``message`` (``K @ Q``) and ``total`` (``K.sum()``) may be passed when already known.
        """
        message = K @ Q if message is None else message
        total = float(K.sum()) if total is None else total
        expected_unary = (Q * unary).sum()
        expected_pairwise = 0.5 * (total - (message * Q).sum())
        entropy = -(Q * torch.log(Q.clamp_min(1e-30))).sum()
        return float(expected_unary + expected_pairwise - entropy)

    def infer(
        self,
        probabilities: torch.Tensor,
        image: torch.Tensor,
        iterations: int = 10,
        schedule: str = "parallel",
    ) -> CRFResult:
        """Mean-field inference from the network's ``probabilities`` ``(L, H, W)``.

        Each update sets ``Q_i(l) ~ exp(-U_i(l) - sum_j k(i, j) (1 - Q_j(l)))`` with unary
        ``U = -log P``. ``"parallel"`` updates all pixels at once (the paper's and
        Krähenbühl and Koltun's choice); ``"sequential"`` updates one pixel at a time, which
        provably never increases :meth:`energy`.
        """
        if schedule not in ("parallel", "sequential"):
            raise ValueError(f"schedule must be 'parallel' or 'sequential', got {schedule!r}")
        if iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {iterations}")
        L, H, W = probabilities.shape
        if image.shape[-2:] != (H, W):
            raise ValueError(f"image {tuple(image.shape)} and probabilities {(L, H, W)} differ")
        P = probabilities.reshape(L, H * W).T.double()  # (N, L)
        unary = -torch.log(P.clamp_min(1e-12))
        K = self.kernel(image)
        total = float(K.sum())
        Q = torch.softmax(-unary, dim=1)
        message = K @ Q  # (N, L): sum_j k(i, j) Q_j(l), shared by the energy and the update
        energies = [self.energy(Q, unary, K, message, total)]
        for _ in range(iterations):
            if schedule == "parallel":
                # Message passing, compatibility and local update, all pixels at once.
                Q = torch.softmax(-unary + message, dim=1)
                message = K @ Q
            else:  # the message is kept up to date after every single-pixel change
                for i in range(H * W):
                    new = torch.softmax(-unary[i] + message[i], dim=0)
                    message += K[:, i : i + 1] * (new - Q[i])
                    Q[i] = new
            energies.append(self.energy(Q, unary, K, message, total))
        marginals = Q.T.reshape(L, H, W).float()
        return CRFResult(marginals, marginals.argmax(0), energies)


# -- Metrics ----------------------------------------------------------------------------


def boundary_mask(masks: torch.Tensor, width: int = 1) -> torch.Tensor:
    """Pixels within ``width`` pixels of a change of label: a band around object boundaries.

    True where the ``(2 width + 1) x (2 width + 1)`` square around a pixel holds more than one
    label of ``masks`` (the image border is not a boundary). The paper measures accuracy in
    such a band, its "trimap" (Sec. 4.1, Fig. 10); the chapter asks where the CRF's
    corrections fall.

    Args:
        masks: Class indices, shape ``(n, H, W)``.
        width: Half-width of the band in pixels, at least 1.

    Returns:
        Boolean tensor of shape ``(n, H, W)``.
    """
    if masks.dim() != 3 or width < 1:
        raise ValueError(f"need (n, H, W) masks and width >= 1, got {tuple(masks.shape)}, {width}")
    padded = F.pad(masks[:, None].double(), (width,) * 4, mode="replicate")  # (n, 1, H+2w, W+2w)
    high = F.max_pool2d(padded, 2 * width + 1, stride=1)
    low = -F.max_pool2d(-padded, 2 * width + 1, stride=1)
    return (high != low)[:, 0]


def mean_iou(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int
) -> tuple[float, list[float]]:
    """Mean intersection over union, the paper's metric, from the confusion matrix.

    Returns the mean over classes present in ``pred`` or ``target``, and the IoU of each
    class (``nan`` for a class absent from both).
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    index = target.flatten() * num_classes + pred.flatten()
    confusion = torch.bincount(index, minlength=num_classes**2).reshape(num_classes, -1)
    tp = confusion.diag().double()
    union = confusion.sum(0).double() + confusion.sum(1).double() - tp
    iou = torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))
    return float(iou.nanmean()), iou.tolist()
