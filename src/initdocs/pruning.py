"""Filter Pruning via Geometric Median for Deep Convolutional Neural Networks Acceleration.

Yang He, Ping Liu, Ziwei Wang, Zhilan Hu and Yi Yang, CVPR 2019, arXiv:1811.00250.

What this module implements (all from Sec. 3 of the paper unless said otherwise):

* :func:`geometric_median_scores` and :func:`fpgm_select`: every filter of
  a layer gets the sum of its Euclidean distances to the other filters; the filters with the
  smallest sums lie nearest the layer's geometric median and are the ones pruned. This is what
  the authors' code does (flatten, ``cdist``, sum).
* :func:`geometric_median` (the point the criterion approximates), computed with
  Weiszfeld's iteration, for plots.
* :func:`norm_select` (the "smaller-norm-less-important" baseline the paper argues against) and
  :func:`random_select`.
* :class:`SoftFilterPruner`: zero ``int(N * rate)`` filters of every
  convolution, train, and zero them again after each epoch; the zeroed filters keep receiving
  gradients ("soft" pruning as Soft Filter Pruning describes it). Batch norm is not touched.
  The authors' released FPGM code goes further and zeroes the selected filters' gradients
  before every optimizer step, so within an epoch they stay at zero; we do not.
* :func:`fpgm_flops`: the authors' FLOPs accounting for CIFAR ResNets (their
  ``cifar_resnet_flop``), which gives the 52.6 % reduction of ResNet-56 in Table 1, and
  :func:`shrink_blocks`, which physically removes the pruned filters of the first convolution
  of every residual block, so that the book's counter can measure what that saves.
* :func:`recalibrate_batchnorm` and :func:`soft_prune_train`: not in the paper; a repair of
  stale batch-norm statistics after zeroing, and the short prune-and-train loop of the
  chapter's experiment, built on :func:`initdocs.train.fit`.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from fractions import Fraction

import torch
from torch import nn

from .data import Split
from .resnet import BasicBlock, ResNet
from .train import History, accuracy, fit

__all__ = [
    "CRITERIA",
    "SoftFilterPruner",
    "fpgm_flops",
    "fpgm_select",
    "geometric_median",
    "geometric_median_scores",
    "norm_select",
    "random_select",
    "recalibrate_batchnorm",
    "shrink_blocks",
    "soft_prune_train",
]


def _flatten(weight: torch.Tensor) -> torch.Tensor:
    if weight.dim() < 2:
        raise ValueError(f"expected a weight with one row per filter, got shape {weight.shape}")
    return weight.detach().reshape(weight.shape[0], -1)  # (N, C_in * k * k)


def _check_n_prune(n_filters: int, n_prune: int) -> None:
    if not 0 <= n_prune <= n_filters:
        raise ValueError(f"n_prune must lie in [0, {n_filters}], got {n_prune}")


def _lowest(scores: torch.Tensor, n_prune: int) -> torch.Tensor:
    """Indices of the ``n_prune`` smallest scores; ties go to the lower index (stable sort)."""
    _check_n_prune(len(scores), n_prune)
    return torch.argsort(scores, stable=True)[:n_prune]


# --- Selection criteria -------------------------------------------------------------------


def geometric_median_scores(weight: torch.Tensor) -> torch.Tensor:
    """``g(F_j) = sum_j' ||F_j - F_j'||_2`` for every filter ``F_j`` of a layer (the paper's score).

    Args:
        weight: Convolution weight of shape (N, C_in, k, k), or any (N, ...) tensor.

    Returns:
        A float tensor of shape (N,); the smallest entries are nearest the geometric median.
    """
    flat = _flatten(weight)  # (N, d)
    # The direct (not matrix-product) formula keeps the zero diagonal exactly zero.
    distances = torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist")  # (N, N)
    return distances.sum(dim=1)


def fpgm_select(weight: torch.Tensor, n_prune: int) -> torch.Tensor:
    """The ``n_prune`` filters nearest the geometric median, most redundant first."""
    return _lowest(geometric_median_scores(weight), n_prune)


def norm_select(weight: torch.Tensor, n_prune: int) -> torch.Tensor:
    """The ``n_prune`` filters of smallest L2 norm (the norm-based baseline), smallest first."""
    return _lowest(_flatten(weight).norm(dim=1), n_prune)


def random_select(
    weight: torch.Tensor, n_prune: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``n_prune`` filters drawn uniformly without replacement (a control)."""
    _check_n_prune(weight.shape[0], n_prune)
    return torch.randperm(weight.shape[0], generator=generator)[:n_prune]


Selector = Callable[..., torch.Tensor]
CRITERIA: dict[str, Selector] = {"fpgm": fpgm_select, "norm": norm_select, "random": random_select}


def geometric_median(points: torch.Tensor, iters: int = 200, eps: float = 1e-8) -> torch.Tensor:
    """The point minimizing the summed Euclidean distance to ``points``, by Weiszfeld's iteration.

    Args:
        points: Shape (N, d).
        iters: Number of Weiszfeld iterations.
        eps: Floor on distances, so that an iterate landing on a point does not divide by 0.
    """
    x = points.mean(dim=0)  # (d,)
    for _ in range(iters):
        inverse = 1.0 / (points - x).norm(dim=1).clamp_min(eps)  # (N,)
        x = (inverse[:, None] * points).sum(dim=0) / inverse.sum()
    return x


# --- Soft pruning ---------------------------------------------------------------------------


def _select(criterion: str, weight: torch.Tensor, n: int, generator: torch.Generator | None):
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {sorted(CRITERIA)}, got {criterion!r}")
    if criterion == "random":
        return random_select(weight, n, generator)
    return CRITERIA[criterion](weight, n)


class SoftFilterPruner:
    """Zero ``int(N * rate)`` filters of every convolution, again after each epoch (soft pruning).

    Like the authors' CIFAR scripts, every ``nn.Conv2d`` is pruned (the stem included; the
    option-A ResNets have no shortcut convolutions), the classifier is not, and batch norm is
    left alone. Filters are selected anew at every :meth:`step`, so a filter zeroed once can
    grow back and survive the next selection. Between steps the zeroed filters train like any
    other weight, as in Soft Filter Pruning; the released FPGM code instead also zeroes their
    gradients at every iteration, which keeps them at zero until the next selection.

    After every step but the first, :attr:`reselected` records the fraction of the selected
    filters (over all layers) that the previous step had selected too: how stable the choice is.

    Args:
        model: The network; its convolutions are found with ``model.named_modules()``.
        rate: Fraction of filters to zero in each layer, in [0, 1).
        criterion: ``"fpgm"``, ``"norm"`` or ``"random"``.
        seed: Seed of the generator ``"random"`` draws from.
    """

    def __init__(self, model: nn.Module, rate: float, criterion: str = "fpgm", seed: int = 0):
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must lie in [0, 1), got {rate}")
        if criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {sorted(CRITERIA)}, got {criterion!r}")
        self.rate, self.criterion = rate, criterion
        self.convs = {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
        self.generator = torch.Generator().manual_seed(seed)
        self.pruned: dict[str, torch.Tensor] = {}
        self.reselected: list[float] = []

    def n_prune(self, n_filters: int) -> int:
        """The per-layer count of the authors' code: ``int(N * rate)``."""
        return int(n_filters * self.rate)

    @torch.no_grad()
    def step(self) -> dict[str, torch.Tensor]:
        """Select and zero the filters of every convolution; return the indices per layer."""
        previous, again, total = dict(self.pruned), 0, 0
        for name, conv in self.convs.items():
            index = _select(
                self.criterion, conv.weight, self.n_prune(conv.out_channels), self.generator
            )
            conv.weight[index] = 0.0  # (n, C_in, k, k) rows set to zero
            if conv.bias is not None:
                conv.bias[index] = 0.0
            self.pruned[name] = index
            if name in previous:
                again += len(set(index.tolist()) & set(previous[name].tolist()))
                total += len(index)
        if previous and total:
            self.reselected.append(again / total)
        return self.pruned


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> None:
    """Recompute every batch norm's running statistics on ``x`` (a cumulative average).

    Zeroing filters changes what the following batch norm sees, but its running mean and
    variance still describe the filters before pruning; in evaluation a zeroed channel then
    becomes a large constant. This is not in the paper; it is a cheap repair we use and test.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over the passes below
    was_training = model.training
    model.train()
    with torch.no_grad():  # the running statistics update without a graph for backward
        for start in range(0, len(x), batch_size):
            model(x[start : start + batch_size])
    model.train(was_training)
    for m, momentum in zip(norms, saved, strict=True):
        m.momentum = momentum


def soft_prune_train(
    model: nn.Module,
    data: Split,
    rate: float,
    criterion: str = "fpgm",
    epochs: int = 3,
    lr: float = 1e-3,
    seed: int = 0,
    recalibrate: bool = True,
) -> History:
    """Prune, then ``epochs`` times train one epoch with :func:`initdocs.train.fit` and prune.

    Each epoch is its own call of ``fit`` (AdamW, learning rate ``lr`` decayed to zero within
    the epoch, shuffling seeded with ``seed + epoch``); ``"random"`` selection draws from a
    generator seeded with ``seed``. With ``recalibrate``, batch-norm statistics are recomputed
    on the training images after each pruning (:func:`recalibrate_batchnorm`).

    The history's ``test_accuracy`` is measured after every pruning: entry 0 right after the
    first one (no retraining yet), then one per epoch. ``train_loss`` holds each epoch's mean
    loss and ``history.reselected`` the share of the filters selected after each epoch that
    had been selected before it too (:attr:`SoftFilterPruner.reselected`).
    """
    pruner = SoftFilterPruner(model, rate, criterion, seed=seed)
    history, start = History(), time.perf_counter()
    for epoch in range(epochs + 1):
        if epoch > 0:  # one epoch of training between two prunings
            # no test inside fit: the accuracy below is measured after the next pruning
            trained = fit(
                model, data.x_train, data.y_train, None, None, epochs=1, lr=lr, seed=seed + epoch
            )
        pruner.step()
        if recalibrate:
            recalibrate_batchnorm(model, data.x_train)
        history.record(test_accuracy=accuracy(model, data.x_test, data.y_test))
        if epoch > 0:
            history.record(train_loss=trained.train_loss[0], reselected=pruner.reselected[-1])
    history.seconds = time.perf_counter() - start
    return history


# --- Cost: the authors' accounting and a physically smaller network -------------------------


def fpgm_flops(depth: int, rate: float, in_channels: int = 3, image_size: int = 32) -> int:
    """The FLOPs of a pruned CIFAR ResNet as the authors count them (``cifar_resnet_flop``).

    With ``keep = 1 - rate``, the count runs over the convolutions only (no classifier):

    * the stem convolution (``in_channels`` -> 16) counts ``keep`` of its cost;
    * the first block of stage 1 counts ``keep**2`` for both convolutions (its input is the
      pruned stem);
    * every other block counts ``keep`` for its first convolution (its input, the residual
      stream, is not pruned) and ``keep**2`` for its second (input and output pruned);
    * the first convolution of stages 2 and 3 is costed with the halved input channels of a
      downsampling block (the code's ``offset`` correction).

    Arithmetic is exact (fractions) and the result is truncated like the code's ``int()``.
    ``fpgm_flops(56, 0.0) == 125_485_056`` and ``fpgm_flops(56, 0.4) == 59_436_564``.

    Args:
        depth: 6n + 2 (20, 32, 56, 110, ...).
        rate: Pruning rate in [0, 1).
        in_channels: Channels of the input image.
        image_size: Side of the input image.
    """
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNets have depth 6n + 2, got {depth}")
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate must lie in [0, 1), got {rate}")
    keep = 1 - Fraction(str(rate))
    n = (depth - 2) // 6
    flops = Fraction(16 * image_size**2 * 9 * in_channels) * keep  # stem
    c_in = 16
    for stage, width in enumerate((16, 32, 64)):
        side = image_size // 2**stage
        for block in range(n):
            first_keep = keep**2 if (stage, block) == (0, 0) else keep
            flops += width * side**2 * 9 * c_in * first_keep  # conv1: c_in -> width
            flops += width * side**2 * 9 * width * keep**2  # conv2: width -> width
            c_in = width
    return int(flops)


@torch.no_grad()
def shrink_blocks(model: ResNet, rate: float, criterion: str = "fpgm") -> ResNet:
    """A copy of ``model`` whose blocks' first convolutions have ``int(N * rate)`` fewer filters.

    This is the pruning that can be done for real in a residual network without touching the
    residual stream: the kept filters of ``conv1`` (and their ``bn1`` statistics) are copied,
    and ``conv2`` loses the matching input channels. Other layers are copied unchanged.

    Args:
        model: A ResNet made of :class:`BasicBlock`.
        rate: Fraction of each first convolution's filters to remove.
        criterion: ``"fpgm"`` or ``"norm"`` (deterministic criteria only).
    """
    if criterion not in ("fpgm", "norm"):
        raise ValueError(f"criterion must be 'fpgm' or 'norm', got {criterion!r}")
    small = copy.deepcopy(model)
    for block in small.modules():
        if not isinstance(block, BasicBlock):
            continue
        conv1, bn1, conv2 = block.conv1, block.bn1, block.conv2
        n = conv1.out_channels
        drop = CRITERIA[criterion](conv1.weight, int(n * rate))
        kept = torch.tensor([i for i in range(n) if i not in set(drop.tolist())])
        new1 = nn.Conv2d(
            conv1.in_channels, len(kept), 3, conv1.stride, conv1.padding, conv1.dilation, bias=False
        )
        new1.weight.copy_(conv1.weight[kept])  # (N - n, C_in, 3, 3)
        new_bn = nn.BatchNorm2d(len(kept), eps=bn1.eps, momentum=bn1.momentum)
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(new_bn, name).copy_(getattr(bn1, name)[kept])
        new2 = nn.Conv2d(
            len(kept), conv2.out_channels, 3, 1, conv2.padding, conv2.dilation, bias=False
        )
        new2.weight.copy_(conv2.weight[:, kept])  # (C_out, N - n, 3, 3)
        new_bn.train(bn1.training)  # fresh modules start in training mode
        block.conv1, block.bn1, block.conv2 = new1, new_bn, new2
    return small
