"""Kernel mean matching and dynamic importance weighting against independent computations."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import Bounds, LinearConstraint, minimize
from torch import nn

from initdocs.importance_weighting import (
    diw_step,
    estimate_weights,
    hidden_output,
    kernel_width,
    kmm_objective,
    kmm_program,
    kmm_weights,
    median_gamma,
    per_sample_loss,
    rbf_kernel,
    train_importance_weighted,
    weighted_loss,
)


def reference_kmm(x_tr, x_val, gamma, upper=50.0):
    """The same program written from scratch and solved with a different method (trust-constr)."""
    x_tr, x_val = np.asarray(x_tr, float).reshape(len(x_tr), -1), np.asarray(x_val, float)
    x_val = x_val.reshape(len(x_val), -1)
    n, m = len(x_tr), len(x_val)
    k = lambda a, b: math.exp(-gamma * float(((a - b) ** 2).sum()))  # noqa: E731
    K = np.array([[k(a, b) for b in x_tr] for a in x_tr]) + 1e-5 * np.eye(n)
    kappa = np.array([n / m * sum(k(a, b) for b in x_val) for a in x_tr])
    eps = (math.sqrt(n) - 1) / math.sqrt(n)
    result = minimize(
        lambda b: 0.5 * b @ K @ b - kappa @ b,
        np.ones(n),
        jac=lambda b: K @ b - kappa,
        hess=lambda b: K,
        method="trust-constr",
        bounds=Bounds(0.0, upper),
        constraints=[LinearConstraint(np.ones((1, n)), n * (1 - eps), n * (1 + eps))],
        options={"gtol": 1e-12, "xtol": 1e-12, "maxiter": 5000},
    )
    return result.x, K, kappa


def test_kernel_width_hand_case():
    # Points 0, 1, 3: distances 1, 3, 2; the 1% quantile interpolates 1 + 0.02 * (2 - 1).
    assert kernel_width(np.array([0.0, 1.0, 3.0])) == pytest.approx(1.02)
    assert kernel_width(torch.tensor([[0.0, 0.0], [3.0, 4.0]])) == pytest.approx(5.0)
    with pytest.raises(ValueError):
        kernel_width(np.array([1.0]))


def test_rbf_kernel_matches_formula():
    a, b = np.array([[0.0, 1.0], [2.0, 0.0]]), np.array([[1.0, 1.0]])
    expected = np.exp(-0.5 * np.array([[1.0], [2.0]]))
    np.testing.assert_allclose(rbf_kernel(a, b, 0.5), expected)


def test_program_matrices_against_loops():
    rng = np.random.default_rng(0)
    x_tr, x_val = rng.normal(size=(6, 2)), rng.normal(size=(4, 2))
    K, kappa = kmm_program(x_tr, x_val, 0.7)
    _, K_ref, kappa_ref = reference_kmm(x_tr, x_val, 0.7)
    np.testing.assert_allclose(K, K_ref, rtol=1e-12)
    np.testing.assert_allclose(kappa, kappa_ref, rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmm_matches_independent_solve_when_well_conditioned(seed):
    # 8 well-separated grid points with a shifted validation set: cond(K) is about 10.
    rng = np.random.default_rng(seed)
    x_tr = np.arange(8.0)
    x_val = rng.normal(loc=5.0, scale=1.5, size=12)
    w = kmm_weights(x_tr, x_val, gamma=4.0)
    w_ref, K, kappa = reference_kmm(x_tr, x_val, 4.0)
    assert np.linalg.cond(K) < 100
    np.testing.assert_allclose(w, w_ref, atol=5e-3)
    assert kmm_objective(w, K, kappa) <= kmm_objective(w_ref, K, kappa) + 1e-6


def test_kmm_upper_bound_binds_and_closed_form_interior():
    # Orthogonal points (gamma large): K = (1 + 1e-5) I, so beta_i = kappa_i / (1 + 1e-5) where
    # that lies inside [0, upper] and the sum constraint is slack; kappa_i = n / m * (copies).
    x_tr = np.array([0.0, 10.0, 20.0, 30.0])
    x_val = np.array([0.0, 0.0, 0.0, 10.0, 30.0, 30.0])  # copies 3, 1, 0, 2 -> kappa 2, 2/3, 0, 4/3
    w = kmm_weights(x_tr, x_val, gamma=50.0)
    np.testing.assert_allclose(w, np.array([2.0, 2 / 3, 0.0, 4 / 3]) / (1 + 1e-5), atol=1e-6)
    w = kmm_weights(x_tr, x_val, gamma=50.0, upper=1.5)  # the bound binds at the first point
    np.testing.assert_allclose(w, [1.5, 2 / 3 / (1 + 1e-5), 0.0, 4 / 3 / (1 + 1e-5)], atol=1e-6)


@pytest.mark.parametrize("n", [16, 64])
def test_kmm_feasible_and_same_kernel_mean_on_ill_conditioned_losses(n):
    # 1-D losses, gamma from the authors' heuristic: K is nearly singular, so the weights are
    # ill-determined, but the objective and K w agree between solvers.
    rng = np.random.default_rng(n)
    loss_tr = np.abs(rng.normal(size=n)) + 3.0 * (rng.random(n) < 0.4)
    loss_val = np.abs(rng.normal(size=n))
    gamma = kernel_width(loss_tr)
    w = kmm_weights(loss_tr, loss_val, gamma)
    w_ref, K, kappa = reference_kmm(loss_tr, loss_val, gamma)
    eps = (math.sqrt(n) - 1) / math.sqrt(n)
    assert w.min() >= 0.0 and w.max() <= 50.0
    assert abs(w.sum() - n) <= n * eps + 1e-6
    f, f_ref = kmm_objective(w, K, kappa), kmm_objective(w_ref, K, kappa)
    assert f == pytest.approx(f_ref, rel=1e-6)
    np.testing.assert_allclose(K @ w, K @ w_ref, rtol=1e-3, atol=1e-3)
    # Noisy-looking (large-loss) points get less weight than small-loss points.
    assert w[loss_tr > 3].mean() < w[loss_tr < 1].mean()


def test_kmm_invalid_arguments():
    with pytest.raises(ValueError):
        kmm_weights(np.zeros(0), np.ones(3), 1.0)
    with pytest.raises(ValueError):
        kmm_weights(np.ones(3), np.ones(3), -1.0)
    with pytest.raises(ValueError):
        kmm_weights(np.ones((3, 2)), np.ones((3, 1)), 1.0)


def test_weighted_step_gradient_is_weighted_sum_of_per_sample_gradients():
    torch.manual_seed(0)
    model = nn.Linear(5, 3)
    x, y = torch.randn(7, 5), torch.randint(0, 3, (7,))
    w = torch.rand(7) * 3
    manual = [torch.zeros_like(p) for p in model.parameters()]
    for i in range(7):
        loss_i = nn.functional.cross_entropy(model(x[i : i + 1]), y[i : i + 1])
        for acc, g in zip(
            manual, torch.autograd.grad(loss_i, list(model.parameters())), strict=True
        ):
            acc += w[i] * g
    expected = sum(
        w[i] * nn.functional.cross_entropy(model(x[i : i + 1]), y[i : i + 1]) for i in range(7)
    ).item()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    used, value = diw_step(model, optimizer, x, y, weights=w)
    for p, p0, g in zip(model.parameters(), before, manual, strict=True):
        torch.testing.assert_close(p0 - p.detach(), 0.1 * g)  # SGD step = lr * gradient
    assert torch.equal(used, w)
    assert value == pytest.approx(expected, rel=1e-5)  # a sum, not a mean
    with pytest.raises(ValueError):
        weighted_loss(model(x), y, w[:3])


def test_estimate_weights_restores_mode_and_is_feasible():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 2))
    model.train()
    x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    w = estimate_weights(model, x, y, torch.randn(20, 4), torch.randint(0, 2, (20,)))
    assert model.training and w.shape == (32,) and torch.isfinite(w).all()
    assert (w >= 0).all() and abs(w.sum().item() - 32) <= 32 * (math.sqrt(32) - 1) / math.sqrt(32)


def test_diw_first_epoch_weights_are_one_then_estimated():
    torch.manual_seed(0)
    x, y = torch.randn(40, 4), torch.randint(0, 2, (40,))
    model = nn.Linear(4, 2)
    history = train_importance_weighted(
        model, x, y, x, y, method="diw", x_val=x[:16], y_val=y[:16], epochs=2, batch_size=16
    )
    assert np.array_equal(history.weights[0], np.ones(40))
    assert not np.allclose(history.weights[1], 1.0)
    assert len(history.test_accuracy) == 2
    with pytest.raises(ValueError):
        train_importance_weighted(model, x, y, x, y, method="diw")
    with pytest.raises(ValueError):
        train_importance_weighted(model, x, y, x, y, method="bogus")


def test_median_gamma_hand_case():
    # Points 0, 1, 3: distances 1, 3, 2, median 2, so gamma = 1 / (2 * 4).
    assert median_gamma(np.array([0.0, 1.0, 3.0])) == pytest.approx(1 / 8)
    assert median_gamma(np.zeros((4, 3))) == 1.0  # all points equal: no scale, gamma 1
    with pytest.raises(ValueError):
        median_gamma(np.array([1.0]))


def test_hidden_output_is_the_layer_before_the_last_and_ignores_labels():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    x = torch.randn(4, 2, 3)
    z = hidden_output(net, x, torch.tensor([0, 1, 2, 0]))
    torch.testing.assert_close(z, torch.relu(net[1](x.flatten(1))))
    torch.testing.assert_close(z, hidden_output(net, x, torch.tensor([2, 2, 2, 2])))
    with pytest.raises(TypeError):
        hidden_output(nn.Linear(6, 3), x.flatten(1), None)


def test_kmm_looser_tolerance_keeps_the_objective():
    # The tolerance DIW uses for WE reaches the same objective as the default one.
    rng = np.random.default_rng(5)
    loss_tr = np.abs(rng.normal(size=64)) + 3.0 * (rng.random(64) < 0.4)
    loss_val = np.abs(rng.normal(size=64))
    gamma = kernel_width(loss_tr)
    K, kappa = kmm_program(loss_tr, loss_val, gamma)
    tight = kmm_objective(kmm_weights(loss_tr, loss_val, gamma), K, kappa)
    loose = kmm_objective(kmm_weights(loss_tr, loss_val, gamma, ftol=1e-8), K, kappa)
    assert loose == pytest.approx(tight, rel=1e-8)


def test_estimate_weights_with_hidden_outputs_follows_the_images_not_the_labels():
    # Validation images come from one cluster only: training images of that cluster gain weight,
    # whatever their labels, and shuffling the labels changes nothing.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
    x_a, x_b = torch.randn(16, 2) * 0.3 + 2.0, torch.randn(16, 2) * 0.3 - 2.0
    x_train, y_train = torch.cat([x_a, x_b]), torch.randint(0, 2, (32,))
    x_val, y_val = torch.randn(16, 2) * 0.3 + 2.0, torch.randint(0, 2, (16,))
    kwargs = dict(transform=hidden_output, gamma_rule=median_gamma)
    w = estimate_weights(net, x_train, y_train, x_val, y_val, **kwargs)
    assert w[:16].mean() > 2 * w[16:].mean()
    w_shuffled = estimate_weights(net, x_train, y_train.flip(0), x_val, y_val, **kwargs)
    torch.testing.assert_close(w, w_shuffled)


def test_trainer_passes_the_transformation_to_weight_estimation():
    torch.manual_seed(0)
    x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    calls = []

    def spy(model, xb, yb):
        calls.append(len(xb))
        return per_sample_loss(model, xb, yb)

    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    val = dict(x_val=x[:16], y_val=y[:16])
    train_importance_weighted(model, x, y, x, y, **val, epochs=2, batch_size=16, transform=spy)
    assert calls == [16, 16, 16, 16]  # epoch 2 only (warm start): 2 batches, train and val each


def test_static_history_records_the_weighted_loss_per_example():
    torch.manual_seed(0)
    x, y = torch.randn(40, 4), torch.randint(0, 2, (40,))
    model, w = nn.Linear(4, 2), torch.rand(40)
    with torch.no_grad():  # lr 0 leaves the model as it is: every epoch sees the same losses
        expected = (w * F.cross_entropy(model(x), y, reduction="none")).sum().item() / 40
    history = train_importance_weighted(
        model, x, y, x, y, method="static", static_weights=w, epochs=2, batch_size=16, lr=0.0
    )
    assert history.train_loss == pytest.approx([expected, expected])
    assert [h.tolist() for h in history.weights] == [w.tolist(), w.tolist()]
    assert history.seconds > 0
