"""Self-Distillation as Instance-Specific Label Smoothing.

Zhilu Zhang and Mert R. Sabuncu, NeurIPS 2020, arXiv:2006.05065.

What this module implements, in the paper's terms:

* :func:`uniform_smoothing_targets`: classical label smoothing as the paper and its code write
  it, ``1 - eps`` on the true class and ``eps / (K - 1)`` on each other class. (torch's
  ``label_smoothing=eps`` puts ``eps / K`` on *every* class, so the true class gets
  ``1 - eps + eps / K``: a different target.)
* :func:`soft_cross_entropy`: the cross-entropy ``H(t, p)`` against a soft target ``t``, with
  the authors' ``+1e-8`` inside the logarithm.
* :class:`DistillationLoss`: teacher-student training at temperature 1,
  ``(1 - alpha) H(e_y, p) + alpha H(t(x), p)``, the objective the paper reads as amortized MAP
  estimation with an instance-specific Dirichlet prior built from the teacher's prediction.
* :func:`beta_smoothing_targets` and :class:`SelfDistillationLoss`: the paper's Beta smoothing,
  an instance-specific label smoothing without a separately trained teacher (the algorithm of
  the authors' code): values drawn from ``Beta(a, 1)``, sorted, and handed out by the rank of an
  EMA teacher's confidence on the true class.
* :func:`ema_decay` and :class:`EMATeacher`: the exponential-moving-average teacher with the
  code's decay schedule ``min(1 - 1 / (t + 1), 0.999)``.
* :func:`expected_calibration_error` and :func:`reliability_diagram`: the calibration metrics
  the paper reports (ECE with 15 equal-width confidence bins, as in Guo et al., 2017).
* :class:`DistillationObjective` and :class:`BetaSmoothingObjective`: adapters that let the
  book's shared loop :func:`initdocs.train.fit` train with per-example soft targets; ``fit``
  passes training-set row indices in place of labels.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BetaSmoothingObjective",
    "DistillationLoss",
    "DistillationObjective",
    "EMATeacher",
    "ReliabilityDiagram",
    "SelfDistillationLoss",
    "beta_smoothing_targets",
    "ema_decay",
    "expected_calibration_error",
    "reliability_diagram",
    "soft_cross_entropy",
    "uniform_smoothing_targets",
]


def _check_labels(labels: torch.Tensor, num_classes: int) -> None:
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    if labels.dim() != 1:
        raise ValueError(f"labels must have shape (N,), got {tuple(labels.shape)}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes - 1}]")


def _spread(true_value: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Target with ``true_value[i]`` on class ``labels[i]`` and the rest spread over K - 1."""
    rest = ((1.0 - true_value) / (num_classes - 1)).unsqueeze(1)  # (N, 1)
    targets = rest.expand(len(labels), num_classes).clone()  # (N, K)
    targets.scatter_(1, labels.unsqueeze(1), true_value.unsqueeze(1))
    return targets


def uniform_smoothing_targets(
    labels: torch.Tensor, num_classes: int, epsilon: float = 0.1
) -> torch.Tensor:
    """Classical label smoothing over the K - 1 wrong classes, shape ``(N, K)``.

    Args:
        labels: True classes, shape ``(N,)``.
        num_classes: Number of classes ``K``.
        epsilon: Probability mass moved away from the true class.
    """
    _check_labels(labels, num_classes)
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must lie in [0, 1], got {epsilon}")
    return _spread(torch.full((len(labels),), 1.0 - epsilon), labels, num_classes)


def soft_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, eps: float = 1e-8
) -> torch.Tensor:
    """Mean over the batch of ``-sum_k t_k log(softmax(z)_k + eps)``.

    Args:
        logits: Student logits ``z``, shape ``(N, K)``.
        targets: Soft targets ``t`` whose rows sum to one, shape ``(N, K)``.
        eps: Added inside the logarithm, as in the authors' code.
    """
    if logits.shape != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ")
    return -(targets * torch.log(logits.softmax(dim=1) + eps)).sum(dim=1).mean()


def beta_smoothing_targets(
    teacher_confidence: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    a: float = 3.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Beta smoothing targets (the authors' code), shape ``(N, K)``.

    Draw ``N`` values ``b ~ Beta(a, 1)`` and sort them; the example whose teacher confidence
    has rank ``k`` (ascending) gets the ``k``-th smallest draw ``b_(k)`` on its true class and
    ``(1 - b_(k)) / (K - 1)`` on every other class. Confident examples are smoothed less.

    Args:
        teacher_confidence: The teacher's probability of the true class, shape ``(N,)``.
        labels: True classes, shape ``(N,)``.
        num_classes: Number of classes ``K``.
        a: First shape parameter of ``Beta(a, 1)``; its mean is ``a / (a + 1)``.
        generator: Optional generator for the draws, for reproducible targets.
    """
    _check_labels(labels, num_classes)
    if teacher_confidence.shape != labels.shape:
        raise ValueError("teacher_confidence and labels must both have shape (N,)")
    if a <= 0:
        raise ValueError(f"a must be positive, got {a}")
    n = len(labels)
    # Beta(a, 1) has CDF x**a, so u**(1/a) with u ~ U(0, 1) is an exact draw (inverse CDF).
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    draws = u.pow(1.0 / a).to(teacher_confidence.dtype).sort().values  # (N,) ascending
    ranks = teacher_confidence.detach().argsort(stable=True)  # index of the k-th least confident
    b = torch.empty_like(draws)
    b[ranks] = draws  # the k-th least confident example gets the k-th smallest draw
    return _spread(b, labels, num_classes)


def ema_decay(step: int, max_decay: float = 0.999) -> float:
    """Decay ``lambda_t = min(1 - 1 / (t + 1), max_decay)`` of the EMA teacher at step ``t >= 1``.

    Args:
        step: The update's number ``t``, counted from 1.
        max_decay: The ceiling the schedule reaches after ``1 / (1 - max_decay)`` steps.
    """
    if step < 1:
        raise ValueError(f"step counts from 1, got {step}")
    return min(1.0 - 1.0 / (step + 1), max_decay)


class EMATeacher(nn.Module):
    """An exponential moving average of a model's weights, used as the Beta-smoothing teacher.

    After each update ``theta_ema <- lambda_t theta_ema + (1 - lambda_t) theta`` with
    ``lambda_t`` from :func:`ema_decay`. Buffers (e.g. batch-norm statistics) are copied.

    Args:
        model: The student whose weights the teacher averages; it is copied, not shared.
        max_decay: Ceiling of the decay schedule (0.999 in the authors' code).
    """

    def __init__(self, model: nn.Module, max_decay: float = 0.999) -> None:
        super().__init__()
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.max_decay = max_decay
        self.step = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> float:
        """Fold the current weights of ``model`` into the average; returns the decay used."""
        self.step += 1
        decay = ema_decay(self.step, self.max_decay)
        for ema_p, p in zip(self.module.parameters(), model.parameters(), strict=True):
            ema_p.mul_(decay).add_(p.detach(), alpha=1.0 - decay)
        for ema_b, b in zip(self.module.buffers(), model.buffers(), strict=True):
            ema_b.copy_(b)
        return decay

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


class DistillationLoss(nn.Module):
    """Teacher-student loss at temperature 1: ``(1 - alpha) H(e_y, p) + alpha H(t, p)``.

    Args:
        alpha: Weight of the teacher's soft target.
    """

    def __init__(self, alpha: float = 0.6) -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
        self.alpha = alpha

    def forward(
        self, logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        hard = F.cross_entropy(logits, labels)  # H(e_y, p)
        soft = soft_cross_entropy(logits, targets)  # H(t, p)
        return (1.0 - self.alpha) * hard + self.alpha * soft


class SelfDistillationLoss(DistillationLoss):
    """The paper's Beta smoothing loss: :class:`DistillationLoss` with Beta-smoothing targets.

    Args:
        alpha: Weight of the soft term (0.6 in the authors' code).
        a: Shape parameter of ``Beta(a, 1)`` (3.0 in the authors' code).
    """

    def __init__(self, alpha: float = 0.6, a: float = 3.0) -> None:
        super().__init__(alpha)
        if a <= 0:
            raise ValueError(f"a must be positive, got {a}")
        self.a = a

    def forward(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        teacher_confidence: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        targets = beta_smoothing_targets(
            teacher_confidence, labels, logits.shape[1], self.a, generator
        )
        return super().forward(logits, labels, targets)


@dataclass(frozen=True)
class ReliabilityDiagram:
    """Per-bin statistics of confidence against accuracy (empty bins hold NaN)."""

    edges: torch.Tensor  # (n_bins + 1,)
    accuracy: torch.Tensor  # (n_bins,)
    confidence: torch.Tensor  # (n_bins,)
    count: torch.Tensor  # (n_bins,)

    @property
    def ece(self) -> float:
        """Expected calibration error: sum over bins of ``|B|/n * |acc(B) - conf(B)|``."""
        full = self.count > 0
        n = self.count.sum()
        if n == 0:
            raise ValueError("no predictions to evaluate")
        gaps = (self.accuracy[full] - self.confidence[full]).abs()
        return float((self.count[full] / n * gaps).sum())


def reliability_diagram(
    probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15
) -> ReliabilityDiagram:
    """Bin predictions by confidence ``max_k p_k`` into ``n_bins`` equal bins ``(lo, hi]``.

    Args:
        probs: Predicted class probabilities, shape ``(N, K)``.
        labels: True classes, shape ``(N,)``.
        n_bins: Number of equal-width confidence bins on ``[0, 1]``.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    if probs.dim() != 2 or len(probs) != len(labels):
        raise ValueError("probs must have shape (N, K) and labels shape (N,)")
    confidence, predicted = probs.detach().double().max(dim=1)  # (N,), (N,)
    correct = (predicted == labels).double()
    edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64)
    # bin b holds confidences in (edges[b], edges[b + 1]]; a confidence of exactly 0 goes to bin 0
    which = (torch.bucketize(confidence, edges, right=False) - 1).clamp(0, n_bins - 1)
    count = torch.bincount(which, minlength=n_bins).double()
    acc_sum = torch.bincount(which, weights=correct, minlength=n_bins)
    conf_sum = torch.bincount(which, weights=confidence, minlength=n_bins)
    with torch.no_grad():
        accuracy = torch.where(count > 0, acc_sum / count.clamp(min=1), torch.nan)
        mean_conf = torch.where(count > 0, conf_sum / count.clamp(min=1), torch.nan)
    return ReliabilityDiagram(edges, accuracy, mean_conf, count)


def expected_calibration_error(
    probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15
) -> float:
    """ECE with ``n_bins`` equal-width confidence bins (see :func:`reliability_diagram`).

    Args:
        probs: Predicted class probabilities, shape ``(N, K)``.
        labels: True classes, shape ``(N,)``.
        n_bins: Number of equal-width confidence bins on ``[0, 1]``.
    """
    return reliability_diagram(probs, labels, n_bins).ece


class DistillationObjective(nn.Module):
    """:class:`DistillationLoss` for :func:`initdocs.train.fit`, which passes row indices.

    Args:
        labels: (Noisy) training labels, shape ``(N,)``.
        teacher_probs: A trained teacher's softmax on the training set, shape ``(N, K)``.
        alpha: Weight of the teacher's soft target.
    """

    def __init__(self, labels: torch.Tensor, teacher_probs: torch.Tensor, alpha: float = 0.6):
        super().__init__()
        self.labels, self.teacher_probs = labels, teacher_probs
        self.loss = DistillationLoss(alpha)

    def forward(self, logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return self.loss(logits, self.labels[index], self.teacher_probs[index])


class BetaSmoothingObjective(nn.Module):
    """:class:`SelfDistillationLoss` with an :class:`EMATeacher`, for :func:`initdocs.train.fit`.

    Each call first folds the student's current weights (those after the previous optimizer
    step) into the EMA teacher, then asks the teacher for its confidence on the batch.

    Args:
        model: The student being trained.
        x: Training inputs, indexed by the row indices ``fit`` passes.
        labels: (Noisy) training labels, shape ``(N,)``.
        alpha: Weight of the soft term.
        a: Shape parameter of ``Beta(a, 1)``.
        seed: Seed of the generator for the Beta draws.
    """

    def __init__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        labels: torch.Tensor,
        alpha: float = 0.6,
        a: float = 3.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.model, self.x, self.labels = [model], x, labels  # list: do not register the student
        self.teacher = EMATeacher(model)
        self.loss = SelfDistillationLoss(alpha, a)
        self.generator = torch.Generator().manual_seed(seed)

    def forward(self, logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        self.teacher.update(self.model[0])
        labels = self.labels[index]
        probs = self.teacher(self.x[index]).softmax(dim=1)  # (B, K)
        confidence = probs.gather(1, labels.unsqueeze(1)).squeeze(1)  # (B,) on the true class
        return self.loss(logits, labels, confidence, self.generator)
