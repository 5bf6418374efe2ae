"""A tiny, deterministic training loop shared by every chapter's experiment."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

__all__ = ["History", "accuracy", "cosine_schedule", "fit", "minibatches", "seed_everything"]


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


def cosine_schedule(
    optimizer: torch.optim.Optimizer, epochs: int, n: int, batch_size: int
) -> torch.optim.lr_scheduler.CosineAnnealingLR:
    """Cosine decay of the learning rate to zero over every step of ``epochs`` epochs."""
    steps_per_epoch = -(-n // batch_size)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps_per_epoch)


@dataclass
class History:
    """What :func:`fit` records once per epoch."""

    train_loss: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def final_accuracy(self) -> float:
        return self.test_accuracy[-1]


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Fraction of labels in ``y`` that ``model`` predicts (evaluation mode).

    Works for classification (``y`` of shape (N,)) and for dense prediction such as
    segmentation (``y`` of shape (N, H, W), logits (N, C, H, W)): the class is the argmax over
    dimension 1, and the fraction is over every label, i.e. pixel accuracy for masks.
    """
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(x), batch_size):
        logits = model(x[start : start + batch_size])
        correct += (logits.argmax(dim=1) == y[start : start + batch_size]).sum().item()
    model.train(was_training)
    return correct / y.numel()


def fit(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
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
    same model initialization and seed give the same history.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise ValueError("inputs and labels must have the same length")
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = cosine_schedule(optimizer, epochs, len(x_train), batch_size)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    history = History()
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        total, seen = 0.0, 0
        for idx in minibatches(len(x_train), batch_size, generator):
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        history.train_loss.append(total / seen)
        history.test_accuracy.append(accuracy(model, x_test, y_test))
    history.seconds = time.perf_counter() - start
    return history
