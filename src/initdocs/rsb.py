"""ResNet strikes back: An improved training procedure in timm.

Ross Wightman, Hugo Touvron and Hervé Jégou, NeurIPS 2021 Workshop "ImageNet: Past, Present,
and Future", arXiv:2110.00476.

The paper changes nothing in ResNet-50 (:func:`initdocs.resnet.resnet50`, with its stochastic
depth already built in); it changes how it is trained. This module holds the ingredients of
the training procedures, each written so that it can be checked on its own:

* :data:`RECIPES`: the procedures A1, A2 and A3 (the paper's procedure table) as frozen
  data, with the entries we could not check against the paper's table in :data:`UNVERIFIED`.
* :class:`Lamb`: the layer-wise adaptive optimizer LAMB as timm implements it (Adam moments
  with bias correction, weight decay added to the update, trust ratio ``||w|| / ||u||`` only
  for groups with weight decay, global gradient-norm clipping at 1.0).
* :func:`cosine_with_warmup`: linear warm-up, then a cosine decay of the learning rate, and
  :class:`WarmupCosine`, the scheduler that applies it after every step.
* :func:`mixup`, :func:`cutmix` and :func:`mix_batch`: mixed images with mixed targets; cutmix
  corrects lambda to the area actually pasted.
* :func:`binary_cross_entropy`: the one-vs-all loss on mixed targets, with the
  optional target threshold of timm.
* :class:`RepeatedAugSampler`: repeated augmentation, each index drawn ``repeats`` times.
* :func:`fit_rsb`: a small training loop combining them, for the chapter's experiment.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from initdocs.train import History, accuracy, minibatches, train_epoch

__all__ = [
    "RECIPES",
    "UNVERIFIED",
    "Lamb",
    "Recipe",
    "RepeatedAugSampler",
    "WarmupCosine",
    "binary_cross_entropy",
    "cosine_with_warmup",
    "cutmix",
    "cutmix_box",
    "fit_rsb",
    "mix_batch",
    "mixed_targets",
    "mixup",
    "recipe_table",
]


# ---- The three procedures (the paper's procedure table) ----------------------------------


@dataclass(frozen=True)
class Recipe:
    """One training procedure for ResNet-50 on ImageNet-1k."""

    epochs: int
    train_resolution: int
    test_resolution: int
    batch_size: int
    optimizer: str
    lr: float
    weight_decay: float
    warmup_epochs: int
    schedule: str
    loss: str
    label_smoothing: float | None  # None: not used
    mixup_alpha: float
    cutmix_alpha: float
    randaugment: tuple[int, float]  # (magnitude, magnitude std)
    drop_path_rate: float | None  # None: no stochastic depth
    repeated_augmentation: bool
    test_crop: float
    top1: float  # ImageNet-val top-1 of ResNet-50 at 224, in percent


_COMMON = dict(batch_size=2048, optimizer="LAMB", warmup_epochs=5, schedule="cosine",
               loss="BCE", cutmix_alpha=1.0, test_resolution=224, test_crop=0.95)  # fmt: skip

RECIPES: dict[str, Recipe] = {
    "A1": Recipe(epochs=600, train_resolution=224, lr=5e-3, weight_decay=0.01,
                 label_smoothing=0.1, mixup_alpha=0.2, randaugment=(7, 0.5),
                 drop_path_rate=0.05, repeated_augmentation=True, top1=80.4, **_COMMON),
    "A2": Recipe(epochs=300, train_resolution=224, lr=5e-3, weight_decay=0.02,
                 label_smoothing=None, mixup_alpha=0.1, randaugment=(7, 0.5),
                 drop_path_rate=0.05, repeated_augmentation=True, top1=79.8, **_COMMON),
    "A3": Recipe(epochs=100, train_resolution=160, lr=8e-3, weight_decay=0.02,
                 label_smoothing=None, mixup_alpha=0.1, randaugment=(6, 0.5),
                 drop_path_rate=None, repeated_augmentation=False, top1=78.1, **_COMMON),
}  # fmt: skip

#: Entries taken from the timm and mmpretrain configurations of the recipes, not checked
#: against the paper's Table 1 by us (label smoothing of A1 is the least certain).
UNVERIFIED: frozenset[tuple[str, str]] = frozenset(
    {(name, "label_smoothing") for name in RECIPES}
    | {(name, field) for name in RECIPES for field in ("lr", "weight_decay", "mixup_alpha")}
    | {(name, field) for name in RECIPES for field in ("randaugment", "test_crop")}
    | {("A2", "top1")}
)

_ROWS = (  # (label, field, formatter)
    ("epochs", "epochs", str),
    ("train / test resolution", None, None),
    ("batch size", "batch_size", str),
    ("optimizer", "optimizer", str),
    ("learning rate", "lr", lambda v: f"{v:g}"),
    ("weight decay", "weight_decay", lambda v: f"{v:g}"),
    ("warm-up epochs, schedule", None, None),
    ("loss", "loss", str),
    ("label smoothing", "label_smoothing", lambda v: "no" if v is None else f"{v:g}"),
    ("mixup alpha", "mixup_alpha", lambda v: f"{v:g}"),
    ("cutmix alpha", "cutmix_alpha", lambda v: f"{v:g}"),
    ("RandAugment (magnitude / std)", "randaugment", lambda v: f"{v[0]} / {v[1]:g}"),
    ("stochastic depth", "drop_path_rate", lambda v: "no" if v is None else f"{v:g}"),
    ("repeated augmentation", "repeated_augmentation", lambda v: "yes" if v else "no"),
    ("test crop ratio", "test_crop", lambda v: f"{v:g}"),
    ("ImageNet top-1 (%)", "top1", lambda v: f"{v:.1f}"),
)


def recipe_table(recipes: dict[str, Recipe] = RECIPES, mark: str = "†") -> str:
    """The recipes as a Markdown table, one column per procedure; unverified cells get ``mark``."""
    names = list(recipes)
    lines = ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for label, field, fmt in _ROWS:
        cells = []
        for name in names:
            r = recipes[name]
            if field is None and label.startswith("train"):
                text = f"{r.train_resolution} / {r.test_resolution}"
            elif field is None:
                text = f"{r.warmup_epochs}, {r.schedule}"
            else:
                text = fmt(getattr(r, field))
                text += mark if (name, field) in UNVERIFIED else ""
            cells.append(text)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---- LAMB (You et al. 2020, as in timm) -----------------------------------------------------


class Lamb(torch.optim.Optimizer):
    """LAMB: Adam's direction, rescaled per tensor by the trust ratio ``||w|| / ||u||``.

    Per step, with the gradients first divided by ``max(1, ||g||_global / max_grad_norm)``:
    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
    ``u = (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) + wd * w`` and
    ``w <- w - lr * phi * u`` with ``phi = ||w|| / ||u||`` (1 if either norm is 0). As in timm's
    default (``always_adapt=False``), groups with ``weight_decay == 0`` use ``phi = 1``.

    Args:
        params: Parameters or parameter groups (dicts) to optimize.
        lr: Learning rate.
        betas: Decay rates of the first and second moments.
        eps: Added to the denominator (outside the square root).
        weight_decay: Decoupled weight decay, added to the update (not to the gradient).
        max_grad_norm: Global gradient-norm clipping threshold; ``None`` disables it.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.01,
        max_grad_norm: float | None = 1.0,
    ) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError("lr, eps and weight_decay must be non-negative")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must lie in [0, 1), got {betas}")
        if max_grad_norm is not None and max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be positive or None, got {max_grad_norm}")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults)
        self.max_grad_norm = max_grad_norm

    @torch.no_grad()
    def _clip_divisor(self) -> torch.Tensor | float:
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        if self.max_grad_norm is None or not grads:
            return 1.0
        global_norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
        return (global_norm / self.max_grad_norm).clamp(min=1.0)

    @torch.no_grad()
    def step(self, closure=None):  # torch.optim.Optimizer signature
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        divisor = self._clip_divisor()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad / divisor  # global clipping; p.grad itself is left unchanged
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                state["step"] += 1
                t, m, v = state["step"], state["m"], state["v"]
                m.mul_(beta1).add_(grad, alpha=1 - beta1)  # first moment
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)  # second moment
                m_hat = m / (1 - beta1**t)  # bias corrections
                v_hat = v / (1 - beta2**t)
                update = m_hat / (v_hat.sqrt() + eps)  # Adam's direction r_t
                if wd != 0:
                    update = update + wd * p  # decoupled weight decay: r_t + lambda w
                    w_norm, u_norm = p.norm(), update.norm()
                    if w_norm > 0 and u_norm > 0:  # trust ratio phi = ||w|| / ||u||
                        update = update * (w_norm / u_norm)
                p.add_(update, alpha=-lr)
        return loss


def cosine_with_warmup(
    step: int, total_steps: int, warmup_steps: int, base_lr: float, min_lr: float = 0.0
) -> float:
    """Learning rate at ``step``: linear warm-up from 0, then a half cosine down to ``min_lr``.

    ``lr = base * (step + 1) / warmup`` while ``step < warmup``; afterwards
    ``min + (base - min) * (1 + cos(pi * s / (total - warmup))) / 2`` with ``s = step - warmup``.
    """
    if not 0 <= warmup_steps < total_steps:
        raise ValueError("need 0 <= warmup_steps < total_steps")
    if step < 0:
        raise ValueError(f"step must be non-negative, got {step}")
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = min((step - warmup_steps) / (total_steps - warmup_steps), 1.0)
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))


class WarmupCosine(torch.optim.lr_scheduler.LRScheduler):
    """Per-step scheduler: every group's rate is :func:`cosine_with_warmup` of its initial rate.

    Step ``s`` (counting from 0) runs at ``cosine_with_warmup(s, total_steps, warmup_steps,
    lr)``, where ``lr`` is the group's learning rate when the scheduler is created.
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int
    ) -> None:
        if not 0 <= warmup_steps < total_steps:
            raise ValueError("need 0 <= warmup_steps < total_steps")
        self.total_steps, self.warmup_steps = total_steps, warmup_steps
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        return [
            cosine_with_warmup(self.last_epoch, self.total_steps, self.warmup_steps, base)
            for base in self.base_lrs
        ]


# ---- Mixed samples and their targets -------------------------------------------------------


def mixed_targets(
    y: torch.Tensor, num_classes: int, lam: float, smoothing: float = 0.0
) -> torch.Tensor:
    """``lam * onehot(y) + (1 - lam) * onehot(y.flip(0))``, optionally label-smoothed: (B, K)."""
    off = smoothing / num_classes
    one_hot = F.one_hot(y, num_classes).float() * (1.0 - smoothing) + off  # (B, K)
    return lam * one_hot + (1.0 - lam) * one_hot.flip(0)


def mixup(
    x: torch.Tensor, y: torch.Tensor, num_classes: int, lam: float, smoothing: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup (Zhang et al.): blend each image with the batch's reversed order, targets alike."""
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lambda must be in [0, 1], got {lam}")
    return lam * x + (1.0 - lam) * x.flip(0), mixed_targets(y, num_classes, lam, smoothing)


def cutmix_box(
    height: int, width: int, lam: float, rng: np.random.Generator
) -> tuple[int, int, int, int]:
    """A box of area about ``(1 - lam) H W`` at a random centre, clipped to the image.

    Returns ``(top, bottom, left, right)``, half-open, as timm's ``rand_bbox``.
    """
    ratio = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
    top, bottom = np.clip([cy - cut_h // 2, cy + cut_h // 2], 0, height)
    left, right = np.clip([cx - cut_w // 2, cx + cut_w // 2], 0, width)
    return int(top), int(bottom), int(left), int(right)


def cutmix(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    lam: float,
    rng: np.random.Generator,
    smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """CutMix (Yun et al.): paste a box of the reversed batch; lambda is set to the kept area.

    Returns the mixed images, their targets and the corrected lambda ``1 - box area / (H W)``.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lambda must be in [0, 1], got {lam}")
    height, width = x.shape[-2:]
    top, bottom, left, right = cutmix_box(height, width, lam, rng)
    mixed = x.clone()
    mixed[..., top:bottom, left:right] = x.flip(0)[..., top:bottom, left:right]
    lam = 1.0 - (bottom - top) * (right - left) / (height * width)  # the area actually pasted
    return mixed, mixed_targets(y, num_classes, lam, smoothing), lam


def mix_batch(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    rng: np.random.Generator,
    mixup_alpha: float = 0.1,
    cutmix_alpha: float = 1.0,
    switch_prob: float = 0.5,
    smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """timm's batch-mode ``Mixup``: cutmix with probability ``switch_prob``, else mixup.

    Lambda is drawn from ``Beta(alpha, alpha)`` of the chosen method.
    """
    if mixup_alpha <= 0 and cutmix_alpha <= 0:
        raise ValueError("at least one of mixup_alpha and cutmix_alpha must be positive")
    use_cutmix = cutmix_alpha > 0 and (mixup_alpha <= 0 or rng.random() < switch_prob)
    if use_cutmix:
        lam = float(rng.beta(cutmix_alpha, cutmix_alpha))
        mixed, targets, _ = cutmix(x, y, num_classes, lam, rng, smoothing)
        return mixed, targets
    return mixup(x, y, num_classes, float(rng.beta(mixup_alpha, mixup_alpha)), smoothing)


def binary_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, target_threshold: float | None = None
) -> torch.Tensor:
    """One-vs-all loss on (mixed) targets, averaged over the B x K entries.

    ``-mean(t log sigmoid(z) + (1 - t) log(1 - sigmoid(z)))``. With ``target_threshold``
    (timm's ``--bce-target-thresh``), targets above it become 1 and the others 0.

    Args:
        logits: Scores of shape (B, K).
        targets: Target probabilities of shape (B, K), or class indices of shape (B,).
        target_threshold: Binarize the targets at this value, or keep them soft (``None``).
    """
    if targets.dim() == 1:
        targets = F.one_hot(targets, logits.shape[-1]).to(logits.dtype)
    if targets.shape != logits.shape:
        raise ValueError(f"targets {tuple(targets.shape)} do not match {tuple(logits.shape)}")
    if target_threshold is not None:
        targets = (targets > target_threshold).to(logits.dtype)
    return F.binary_cross_entropy_with_logits(logits, targets)


# ---- Repeated augmentation (Hoffer et al.; DeiT's sampler) ---------------------------------


class RepeatedAugSampler(torch.utils.data.Sampler[int]):
    """Each index of a shuffled epoch appears ``repeats`` times in a row; shards over replicas.

    With several replicas (GPUs) the copies of one image land on different replicas, each
    augmenting it differently. ``num_selected`` truncates every replica's list, as DeiT and
    timm do to keep an epoch as long as without repetition (``None``: keep everything).

    Args:
        num_items: Size of the data set.
        repeats: How often each index is repeated.
        num_replicas: Number of processes sharing the epoch.
        rank: Which of them this sampler serves.
        num_selected: Indices yielded per epoch by this replica, or ``None``.
        seed: Seed of the shuffling; epoch ``e`` uses ``seed + e``.
    """

    def __init__(
        self,
        num_items: int,
        repeats: int = 3,
        num_replicas: int = 1,
        rank: int = 0,
        num_selected: int | None = None,
        seed: int = 0,
    ) -> None:
        if num_items < 1 or repeats < 1 or num_replicas < 1:
            raise ValueError("num_items, repeats and num_replicas must be at least 1")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas}), got {rank}")
        self.num_items, self.repeats, self.seed, self.epoch = num_items, repeats, seed, 0
        self.num_replicas, self.rank = num_replicas, rank
        self.per_replica = math.ceil(num_items * repeats / num_replicas)
        self.num_selected = self.per_replica if num_selected is None else num_selected
        if not 0 <= self.num_selected <= self.per_replica:
            raise ValueError(f"num_selected must be in [0, {self.per_replica}]")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.num_items, generator=g).repeat_interleave(self.repeats)
        total = self.per_replica * self.num_replicas
        order = torch.cat([order, order[: total - len(order)]])  # pad to share evenly
        mine = order[self.rank : total : self.num_replicas]  # (per_replica,)
        return iter(mine[: self.num_selected].tolist())

    def __len__(self) -> int:
        return self.num_selected


# ---- A small RSB-like training loop --------------------------------------------------------


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """No weight decay (and so no trust ratio) on biases and norm parameters (ndim <= 1)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def fit_rsb(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    num_classes: int,
    epochs: int = 20,
    lr: float = 5e-3,
    weight_decay: float = 0.02,
    warmup_epochs: int = 2,
    batch_size: int = 64,
    mixup_alpha: float = 0.1,
    cutmix_alpha: float = 1.0,
    target_threshold: float | None = 0.2,
    seed: int = 0,
) -> History:
    """Train with the RSB ingredients: LAMB, cosine with warm-up, mixup/cutmix and BCE.

    The loop of :func:`initdocs.train.fit` with the paper's pieces swapped in: every batch is
    mixed (:func:`mix_batch`) before the step, the loss is :func:`binary_cross_entropy` on the
    mixed targets and the optimizer is :class:`Lamb` under :class:`WarmupCosine`, updated per
    step. Stochastic depth belongs to the model (``drop_path_rate`` of :mod:`initdocs.resnet`).
    """
    if epochs < 1 or not 0 <= warmup_epochs < epochs:
        raise ValueError("need epochs >= 1 and 0 <= warmup_epochs < epochs")
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    optimizer = Lamb(_param_groups(model, weight_decay), lr=lr)
    steps_per_epoch = -(-len(x_train) // batch_size)
    schedule = WarmupCosine(optimizer, epochs * steps_per_epoch, warmup_epochs * steps_per_epoch)
    bce = partial(binary_cross_entropy, target_threshold=target_threshold)
    history, start = History(), time.perf_counter()
    for _ in range(epochs):
        mixed = (  # drawn lazily, batch by batch, as the step asks for them
            mix_batch(x_train[i], y_train[i], num_classes, rng, mixup_alpha, cutmix_alpha)
            for i in minibatches(len(x_train), batch_size, generator)
        )
        loss = train_epoch(model, optimizer, mixed, bce, schedule=schedule)
        history.record(train_loss=loss, test_accuracy=accuracy(model, x_test, y_test))
    history.seconds = time.perf_counter() - start
    return history
