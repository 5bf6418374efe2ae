"""A tiny, deterministic training loop shared by every chapter's experiment.

The primitives every loop in the book needs live here: :func:`evaluating` (evaluation mode,
restored afterwards), :func:`train_epoch` (one pass over the batches, returning the mean loss)
and one :class:`History`. :func:`fit` is the plain classification loop built from them; the
paper modules build their own short loops from the same pieces, so that only the paper's own
step (its loss, its optimizer, its reweighting) differs.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "History",
    "accuracy",
    "adamw",
    "cosine_schedule",
    "evaluating",
    "fit",
    "minibatches",
    "seed_everything",
    "train_epoch",
]


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch, and return a torch generator seeded the same way."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def minibatches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """One epoch of shuffled mini-batches: index tensors that together cover ``range(n)``.

    The order is drawn from ``generator`` when the first batch is requested, so a seeded
    generator gives the same batches on every run.
    """
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def adamw(
    parameters: Iterable[nn.Parameter], lr: float, weight_decay: float = 1e-4
) -> torch.optim.AdamW:
    """AdamW (decoupled weight decay) as every loop of the book builds it: torch's fused kernel.

    ``fused=True`` updates all tensors in one call; on the chapters' small models that halves
    the optimizer's share of a step (0.47 against 1.05 ms for chapter 07's ViT, one thread).
    The update is the same formula as torch's default per-tensor loop, rounded in a different
    order, so weights agree with it to about 1e-6 rather than bit for bit.
    """
    return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay, fused=True)


def cosine_schedule(
    optimizer: torch.optim.Optimizer, epochs: int, n: int, batch_size: int
) -> torch.optim.lr_scheduler.CosineAnnealingLR:
    """Cosine decay of the learning rate to zero over every step of ``epochs`` epochs."""
    steps_per_epoch = -(-n // batch_size)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps_per_epoch)


@dataclass
class History:
    """What a training loop records once per epoch.

    ``train_loss`` and ``test_accuracy`` are the series every loop keeps; a loop that measures
    more (a sequence accuracy, the importance weights of each epoch) records it by name with
    :meth:`record`, and reads it back as an attribute: ``history.sequence_accuracy``.
    """

    train_loss: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0
    series: dict[str, list[Any]] = field(default_factory=dict)

    def record(self, **values: Any) -> None:
        """Append one epoch's values, e.g. ``record(train_loss=0.3, test_accuracy=0.9)``."""
        for name, value in values.items():
            if name in ("train_loss", "test_accuracy"):
                getattr(self, name).append(value)
            else:
                self.series.setdefault(name, []).append(value)

    def __getattr__(self, name: str) -> list[Any]:
        # Only called when normal lookup fails: the extra series, by name.
        series = self.__dict__.get("series", {})
        if name in series:
            return series[name]
        raise AttributeError(f"History has no series {name!r}; it has {sorted(series)}")

    @property
    def final_accuracy(self) -> float:
        return self.test_accuracy[-1]


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Evaluation mode without gradients for the ``with`` block; the previous mode returns after.

    ``with evaluating(model): logits = model(x)`` is the one place the book switches dropout,
    batch-norm statistics and autograd off for a measurement.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[tuple[Any, Any]],
    loss_fn: Callable[[Any, Any], torch.Tensor],
    *,
    schedule: torch.optim.lr_scheduler.LRScheduler | None = None,
    clip: float | None = None,
) -> float:
    """One pass over ``batches`` of ``(inputs, targets)``; returns the mean loss per example.

    Each step computes ``loss_fn(model(inputs), targets)`` (``inputs`` may be a tuple, passed
    as separate arguments), back-propagates, clips the gradient norm to ``clip`` if given,
    steps the optimizer and then the per-step ``schedule``. The mean weights each batch's loss
    by its number of examples, ``len(targets)``.
    """
    model.train()
    total, seen = 0.0, 0
    for inputs, targets in batches:
        outputs = model(*inputs) if isinstance(inputs, tuple) else model(inputs)
        loss = loss_fn(outputs, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        if schedule is not None:
            schedule.step()
        total += loss.item() * len(targets)
        seen += len(targets)
    if seen == 0:
        raise ValueError("train_epoch got no batches")
    return total / seen


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Fraction of labels in ``y`` that ``model`` predicts (evaluation mode).

    Works for classification (``y`` of shape (N,)) and for dense prediction such as
    segmentation (``y`` of shape (N, H, W), logits (N, C, H, W)): the class is the argmax over
    dimension 1, and the fraction is over every label, i.e. pixel accuracy for masks.
    """
    correct = 0
    with evaluating(model):
        for start in range(0, len(x), batch_size):
            logits = model(x[start : start + batch_size])
            correct += (logits.argmax(dim=1) == y[start : start + batch_size]).sum().item()
    return correct / y.numel()


def fit(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor | None,
    y_test: torch.Tensor | None,
    *,
    epochs: int = 20,
    lr: float = 3e-3,
    batch_size: int = 64,
    weight_decay: float = 1e-4,
    seed: int = 0,
    loss_fn: nn.Module | None = None,
) -> History:
    """Train ``model`` with AdamW and a cosine learning-rate decay; evaluate after every epoch.

    The shuffling order comes from a generator seeded with ``seed``, so two calls with the
    same model initialization and seed give the same history. With ``x_test`` and ``y_test``
    both ``None`` there is no test after each epoch (``history.test_accuracy`` stays empty):
    for runs of many short epochs whose learning curve nobody plots.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if (x_test is None) != (y_test is None):
        raise ValueError("give both x_test and y_test, or neither")
    if len(x_train) != len(y_train) or (x_test is not None and len(x_test) != len(y_test)):
        raise ValueError("inputs and labels must have the same length")
    generator = torch.Generator().manual_seed(seed)
    optimizer = adamw(model.parameters(), lr, weight_decay)
    schedule = cosine_schedule(optimizer, epochs, len(x_train), batch_size)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    history = History()
    start = time.perf_counter()
    for _ in range(epochs):
        batches = (
            (x_train[i], y_train[i]) for i in minibatches(len(x_train), batch_size, generator)
        )
        loss = train_epoch(model, optimizer, batches, loss_fn, schedule=schedule)
        if x_test is None:
            history.record(train_loss=loss)
        else:
            history.record(train_loss=loss, test_accuracy=accuracy(model, x_test, y_test))
    history.seconds = time.perf_counter() - start
    return history
