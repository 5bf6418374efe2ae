"""The shared data and training loop: real offline data, deterministic runs."""

import pytest
import torch
from torch import nn

from initdocs.data import load_digits_split
from initdocs.train import accuracy, fit, seed_everything


def test_digits_split_shapes_and_stratification():
    split = load_digits_split(test_fraction=0.25, seed=0)
    assert split.x_train.shape == (1347, 1, 8, 8)
    assert split.x_test.shape == (450, 1, 8, 8)
    assert split.num_classes == 10
    assert split.x_train.min() >= 0.0 and split.x_train.max() <= 1.0
    test_counts = torch.bincount(split.y_test, minlength=10)
    all_counts = test_counts + torch.bincount(split.y_train, minlength=10)
    # stratified: every digit is split 1:3, to within one image
    assert ((test_counts - 0.25 * all_counts).abs() <= 1).all()


def test_digits_split_refuses_bad_fraction():
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits_split(test_fraction=1.5)


def _run(seed: int):
    split = load_digits_split(seed=0)
    seed_everything(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    history = fit(
        model,
        split.x_train,
        split.y_train,
        split.x_test,
        split.y_test,
        epochs=10,
        lr=1e-2,
        seed=seed,
    )
    return model, history


def test_fit_is_deterministic_and_learns():
    _, first = _run(seed=1)
    _, second = _run(seed=1)
    assert first.train_loss == second.train_loss
    assert first.test_accuracy == second.test_accuracy
    assert first.train_loss[-1] < first.train_loss[0]
    assert first.final_accuracy > 0.9  # a small MLP on digits, far above chance (0.1)


def test_accuracy_matches_a_direct_count():
    split = load_digits_split(seed=0)
    model, _ = _run(seed=2)
    with torch.no_grad():
        direct = (model(split.x_test).argmax(1) == split.y_test).float().mean().item()
    assert accuracy(model, split.x_test, split.y_test, batch_size=7) == pytest.approx(direct)


def test_fit_refuses_zero_epochs():
    x, y = torch.zeros(4, 2), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="epochs"):
        fit(nn.Linear(2, 2), x, y, x, y, epochs=0)


def test_accuracy_counts_pixels_for_dense_predictions():
    class Constant(nn.Module):
        def forward(self, x):  # (N, 1, H, W) -> logits (N, 2, H, W) favouring class 1
            return torch.stack([torch.zeros_like(x[:, 0]), torch.ones_like(x[:, 0])], dim=1)

    x = torch.zeros(3, 1, 4, 4)
    y = torch.zeros(3, 4, 4, dtype=torch.long)
    y[:, :2] = 1  # half of every mask is class 1
    assert accuracy(Constant(), x, y, batch_size=2) == pytest.approx(0.5)
