"""Rethinking Importance Weighting for Deep Learning under Distribution Shift.

Tongtong Fang, Nan Lu, Gang Niu, Masashi Sugiyama, NeurIPS 2020, arXiv:2006.04662.

Importance weighting (IW) corrects a shift between the training distribution and the test
distribution by weighting every training loss with ``w(x, y) = p_te(x, y) / p_tr(x, y)``. It has
two steps: weight estimation (WE) and weighted classification (WC). The paper's dynamic
importance weighting (DIW) runs both steps on every mini-batch, so that WE always matches the
*current* model's view of the data. What this module implements, following the paper's method
and the authors' reference code (``diw.py`` and ``kmm.py``):

* :func:`rbf_kernel`, :func:`kernel_width`: the Gaussian kernel ``exp(-gamma ||a - b||^2)`` and
  the authors' heuristic for ``gamma``: the 1% quantile of the pairwise Euclidean distances of
  the training points. (The code calls it a kernel *width* but passes it as scikit-learn's
  ``gamma``, an inverse squared width; we keep that quirk so that the weights match theirs.)
  :func:`median_gamma` is the usual median heuristic, for many-dimensional transformations.
* :func:`kmm_program`, :func:`kmm_weights`: kernel mean matching (KMM) as the quadratic
  program of the reference code, solved with SciPy's SLSQP.
* :func:`per_sample_loss`, :func:`hidden_output`: the two transformations of the data that the
  paper describes for WE: the per-example loss (1-D, it sees the label; the one the reference
  code uses) and the output of the last hidden layer (it sees only the image).
* :func:`estimate_weights`, :func:`weighted_loss`, :func:`diw_step`: one DIW iteration: WE in
  evaluation mode on the transformation of a training batch against a validation batch, then
  WC in training mode on the weighted *sum* of losses.
* :func:`train_importance_weighted`: a small trainer for plain training (all weights 1),
  static IW (weights fixed in advance) and DIW (weights 1 in the first epoch, the warm start).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import minimize
from torch import nn

from initdocs.train import History, accuracy, adamw, cosine_schedule, evaluating, minibatches

__all__ = [
    "diw_step",
    "estimate_weights",
    "hidden_output",
    "kernel_width",
    "kmm_objective",
    "kmm_program",
    "kmm_weights",
    "median_gamma",
    "per_sample_loss",
    "rbf_kernel",
    "train_importance_weighted",
    "weighted_loss",
]

#: Ridge the reference code adds to the kernel matrix, ``K + 1e-5 I``.
RIDGE = 1e-5
#: SLSQP's stopping tolerance in WE: an *absolute* change of the objective, which is of order
#: ``n^2`` (about -2000 for a batch of 64), so a relative 1e-11 or so. The objective, and with it
#: the matched distribution, is settled long before the ill-determined weights are; DIW solves
#: hundreds of programs, and :func:`kmm_weights`'s default of 1e-12 takes about twice as long.
WE_FTOL = 1e-8


def _as_points(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Return ``x`` as a float64 array of shape (n, d); 1-D input becomes (n, 1)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]  # (n, 1)
    if x.ndim != 2:
        raise ValueError(f"points must have shape (n,) or (n, d), got {x.shape}")
    return x


def rbf_kernel(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    """Gaussian kernel matrix ``k(a_i, b_j) = exp(-gamma * ||a_i - b_j||^2)``, shape (n_a, n_b)."""
    a, b = _as_points(a), _as_points(b)
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T  # (n_a, n_b)
    return np.exp(-gamma * np.maximum(sq, 0.0))


def kernel_width(x: np.ndarray | torch.Tensor) -> float:
    """The authors' ``gamma``: the 1% quantile of the pairwise distances ``||x_i - x_j||``, i < j.

    Args:
        x: Points of shape (n,) or (n, d), with n >= 2.
    """
    x = _as_points(x)
    if len(x) < 2:
        raise ValueError(f"kernel_width needs at least 2 points, got {len(x)}")
    i, j = np.triu_indices(len(x), k=1)
    distances = np.sqrt(((x[i] - x[j]) ** 2).sum(1))  # (n (n - 1) / 2,)
    return float(np.quantile(distances, 0.01))


def median_gamma(x: np.ndarray | torch.Tensor) -> float:
    """The median heuristic: ``gamma = 1 / (2 m^2)``, ``m`` the median pairwise distance, i < j.

    Not the reference code's rule (:func:`kernel_width`, which it applies to 1-D losses): on
    points of many dimensions that rule gives a kernel so narrow that every point is alone.
    """
    x = _as_points(x)
    if len(x) < 2:
        raise ValueError(f"median_gamma needs at least 2 points, got {len(x)}")
    i, j = np.triu_indices(len(x), k=1)
    median = float(np.median(np.sqrt(((x[i] - x[j]) ** 2).sum(1))))
    return 1.0 / (2.0 * median**2) if median > 0 else 1.0


def kmm_program(
    x_train: np.ndarray | torch.Tensor,
    x_val: np.ndarray | torch.Tensor,
    gamma: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The matrices of the KMM program ``min 1/2 b^T K b - kappa^T b``.

    ``K = k(x_train, x_train) + 1e-5 I`` and ``kappa_i = (n_tr / n_val) sum_j k(x_train_i,
    x_val_j)``: this is the squared distance between the weighted training mean and the
    validation mean in the kernel's feature space, times ``n_tr^2 / 2``, up to a constant.

    Returns:
        ``(K, kappa)`` of shapes (n_tr, n_tr) and (n_tr,).
    """
    x_train, x_val = _as_points(x_train), _as_points(x_val)
    if len(x_train) == 0 or len(x_val) == 0:
        raise ValueError("KMM needs at least one training and one validation point")
    if x_train.shape[1] != x_val.shape[1]:
        raise ValueError(f"dimensions differ: {x_train.shape[1]} and {x_val.shape[1]}")
    if not gamma >= 0.0:
        raise ValueError(f"gamma must be non-negative, got {gamma}")
    n_tr, n_val = len(x_train), len(x_val)
    K = rbf_kernel(x_train, x_train, gamma) + RIDGE * np.eye(n_tr)  # (n_tr, n_tr)
    kappa = (n_tr / n_val) * rbf_kernel(x_train, x_val, gamma).sum(1)  # (n_tr,)
    return K, kappa


def kmm_objective(beta: np.ndarray, K: np.ndarray, kappa: np.ndarray) -> float:
    """Value of ``1/2 beta^T K beta - kappa^T beta``."""
    return float(0.5 * beta @ K @ beta - kappa @ beta)


def kmm_weights(
    x_train: np.ndarray | torch.Tensor,
    x_val: np.ndarray | torch.Tensor,
    gamma: float,
    upper: float = 50.0,
    eps: float | None = None,
    ftol: float = 1e-12,
) -> np.ndarray:
    """Kernel mean matching weights of the training points against the validation points.

    Solves ``min 1/2 b^T K b - kappa^T b`` subject to ``0 <= b_i <= upper`` and
    ``|sum_i b_i - n_tr| <= n_tr * eps`` (:func:`kmm_program`) with SciPy's SLSQP. The program
    is convex, so its *objective* is well defined; on 1-D inputs ``K`` is badly conditioned,
    and different solvers return different weights with the same objective and the same
    ``K b``.

    Args:
        x_train: Training points, shape (n_tr,) or (n_tr, d).
        x_val: Validation points, shape (n_val,) or (n_val, d).
        gamma: Kernel parameter of :func:`rbf_kernel`.
        upper: Upper bound ``B`` on every weight (50 in the reference code).
        eps: Slack of the sum constraint; defaults to ``(sqrt(n_tr) - 1) / sqrt(n_tr)``.
        ftol: SLSQP's stopping tolerance on the objective (absolute).

    Returns:
        The weights, shape (n_tr,).
    """
    K, kappa = kmm_program(x_train, x_val, gamma)
    n_tr = len(kappa)
    if eps is None:
        eps = (math.sqrt(n_tr) - 1.0) / math.sqrt(n_tr)
    if upper < 1.0 or eps < 0.0:
        raise ValueError(
            f"need upper >= 1 and eps >= 0 (so that b = 1 is feasible), got {upper}, {eps}"
        )
    ones = np.ones(n_tr)
    constraints = [  # n_tr (1 - eps) <= sum(b) <= n_tr (1 + eps), as two linear inequalities
        {"type": "ineq", "fun": lambda b: n_tr * (1.0 + eps) - b.sum(), "jac": lambda b: -ones},
        {"type": "ineq", "fun": lambda b: b.sum() - n_tr * (1.0 - eps), "jac": lambda b: ones},
    ]
    result = minimize(
        kmm_objective,
        x0=ones,  # feasible start: the unweighted loss
        args=(K, kappa),
        jac=lambda b, K, kappa: K @ b - kappa,
        method="SLSQP",
        bounds=[(0.0, upper)] * n_tr,
        constraints=constraints,
        options={"maxiter": 500, "ftol": ftol},
    )
    return np.clip(result.x, 0.0, upper)


#: A transformation ``(model, x, y) -> z`` of a batch, shape (n,) or (n, d), that WE matches.
Transform = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def per_sample_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every sample, shape (n,): the loss-value transformation (1-D)."""
    return F.cross_entropy(model(x), y, reduction="none")


def hidden_output(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Output of the last hidden layer, shape (n, d): the hidden-layer-output transformation.

    ``model`` must be an ``nn.Sequential`` whose last module is the output layer; the label ``y``
    is not used, so this transformation sees only the image.
    """
    if not isinstance(model, nn.Sequential) or len(model) < 2:
        raise TypeError("hidden_output needs an nn.Sequential ending in its output layer")
    return model[:-1](x).flatten(1)


def estimate_weights(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    transform: Transform = per_sample_loss,
    upper: float = 50.0,
    gamma_rule: Callable[[np.ndarray], float] = kernel_width,
) -> torch.Tensor:
    """Weight estimation (WE): KMM on the model's transformation of both batches, eval mode.

    Args:
        model: The current classifier.
        x_train: Training batch inputs; ``y_train`` its (possibly noisy) labels.
        x_val: Validation batch inputs from the test distribution; ``y_val`` its labels.
        transform: ``(model, x, y) -> z`` of shape (n,) or (n, d): :func:`per_sample_loss` by
            default, as in the reference code, or :func:`hidden_output`.
        upper: Upper bound on the weights.
        gamma_rule: Kernel parameter from the transformed training batch: the reference code's
            :func:`kernel_width` by default, :func:`median_gamma` for hidden-layer outputs.

    Returns:
        Weights of shape (n_tr,), detached, float32.
    """
    with evaluating(model):
        z_train = transform(model, x_train, y_train).double().cpu().numpy()
        z_val = transform(model, x_val, y_val).double().cpu().numpy()
    w = kmm_weights(z_train, z_val, gamma=gamma_rule(z_train), upper=upper, ftol=WE_FTOL)
    return torch.as_tensor(w, dtype=torch.float32)


def weighted_loss(logits: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Weighted classification (WC) objective ``sum_i w_i * CE(logits_i, y_i)`` (a sum)."""
    if not len(logits) == len(y) == len(w):
        raise ValueError(f"lengths differ: {len(logits)}, {len(y)}, {len(w)}")
    return (w.detach() * F.cross_entropy(logits, y, reduction="none")).sum()


def diw_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    x_val: torch.Tensor | None = None,
    y_val: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
    transform: Transform = per_sample_loss,
    gamma_rule: Callable[[np.ndarray], float] = kernel_width,
) -> tuple[torch.Tensor, float]:
    """One DIW iteration: WE (unless ``weights`` is given), then one WC step in train mode.

    Args:
        model: The classifier.
        optimizer: Its optimizer.
        x: Training batch inputs; ``y`` its labels.
        x_val: Validation batch for WE; ``y_val`` its labels.
        weights: Fixed weights (plain or static IW, or the warm start); skips WE.
        transform: The transformation WE matches (see :func:`estimate_weights`).
        gamma_rule: How WE sets the kernel parameter (see :func:`estimate_weights`).

    Returns:
        The weights used, shape (n,), and the value of the weighted loss.
    """
    if weights is None:
        if x_val is None or y_val is None:
            raise ValueError("diw_step needs a validation batch when no weights are given")
        weights = estimate_weights(
            model, x, y, x_val, y_val, transform=transform, gamma_rule=gamma_rule
        )
    model.train()
    loss = weighted_loss(model(x), y, weights)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return weights, loss.item()


def train_importance_weighted(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    method: str = "diw",
    x_val: torch.Tensor | None = None,
    y_val: torch.Tensor | None = None,
    static_weights: torch.Tensor | None = None,
    epochs: int = 20,
    warmup_epochs: int = 1,
    lr: float = 3e-3,
    batch_size: int = 64,
    weight_decay: float = 1e-4,
    seed: int = 0,
    transform: Transform = per_sample_loss,
    gamma_rule: Callable[[np.ndarray], float] = kernel_width,
) -> History:
    """Train with plain, static-IW or DIW weights (AdamW and cosine decay, like ``fit``).

    Every method minimizes the weighted sum of losses of each batch; "plain" uses weights 1,
    "static" the given ``static_weights`` (one per training sample), "diw" weights 1 in the first
    ``warmup_epochs`` epochs and afterwards the WE weights of every batch against a validation
    batch of the same size, drawn afresh from ``(x_val, y_val)`` without replacement, matched
    on ``transform`` with the kernel parameter of ``gamma_rule`` (by default per-sample losses
    and the reference code's rule).

    The history records, once per epoch, the test accuracy, the training loss (the weighted
    loss per training example) and ``history.weights``: the weight every training example
    got in that epoch, an array of shape (n_train,).
    """
    if method not in ("plain", "static", "diw"):
        raise ValueError(f"method must be 'plain', 'static' or 'diw', got {method!r}")
    if method == "static" and (static_weights is None or len(static_weights) != len(x_train)):
        raise ValueError("method 'static' needs one static weight per training sample")
    if method == "diw" and (x_val is None or y_val is None):
        raise ValueError("method 'diw' needs validation data")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    generator = torch.Generator().manual_seed(seed)
    optimizer = adamw(model.parameters(), lr, weight_decay)
    schedule = cosine_schedule(optimizer, epochs, len(x_train), batch_size)
    history, start = History(), time.perf_counter()
    for epoch in range(epochs):
        epoch_weights, loss_sum = np.ones(len(x_train)), 0.0
        for idx in minibatches(len(x_train), batch_size, generator):
            weights, x_v, y_v = None, None, None
            if method == "plain" or (method == "diw" and epoch < warmup_epochs):
                weights = torch.ones(len(idx))
            elif method == "static":
                weights = static_weights[idx]
            else:  # a fresh validation batch for every training batch
                pick = torch.randperm(len(x_val), generator=generator)[: len(idx)]
                x_v, y_v = x_val[pick], y_val[pick]
            x, y = x_train[idx], y_train[idx]
            w, loss = diw_step(model, optimizer, x, y, x_v, y_v, weights, transform, gamma_rule)
            schedule.step()
            epoch_weights[idx.numpy()] = w.numpy()
            loss_sum += loss  # the batch's weighted *sum* of losses
        acc = accuracy(model, x_test, y_test)
        history.record(train_loss=loss_sum / len(x_train), test_accuracy=acc, weights=epoch_weights)
    history.seconds = time.perf_counter() - start
    return history
