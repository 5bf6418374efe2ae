"""Self-distillation and Beta smoothing against the authors' algorithm, closed forms and loops."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from initdocs.self_distillation import (
    BetaSmoothingObjective,
    DistillationLoss,
    DistillationObjective,
    EMATeacher,
    SelfDistillationLoss,
    beta_smoothing_targets,
    ema_decay,
    expected_calibration_error,
    reliability_diagram,
    soft_cross_entropy,
    uniform_smoothing_targets,
)
from initdocs.train import fit

K = 10


def _batch(n: int = 32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, K, generator=g), torch.randint(0, K, (n,), generator=g)


# --- Beta smoothing targets ------------------------------------------------------------------


def test_beta_targets_rows_sum_to_one_and_spread_evenly():
    _, labels = _batch()
    confidence = torch.rand(32, generator=torch.Generator().manual_seed(1))
    t = beta_smoothing_targets(confidence, labels, K, a=3.0)
    assert t.shape == (32, K)
    torch.testing.assert_close(t.sum(dim=1), torch.ones(32))
    b = t[torch.arange(32), labels]
    for i in range(32):
        others = [t[i, k].item() for k in range(K) if k != labels[i]]
        assert others == pytest.approx([(1 - b[i].item()) / (K - 1)] * (K - 1), abs=1e-7)
    assert ((b > 0) & (b <= 1)).all()


def test_true_class_value_follows_confidence_rank():
    # A permutation of confidences: the k-th least confident example gets the k-th smallest draw.
    confidence = torch.tensor([0.9, 0.1, 0.5, 0.3, 0.7, 0.2])
    labels = torch.tensor([0, 1, 2, 3, 4, 5])
    t = beta_smoothing_targets(confidence, labels, K, generator=torch.Generator().manual_seed(3))
    b = t[torch.arange(6), labels]
    order = sorted(range(6), key=lambda i: confidence[i].item())
    values = [b[i].item() for i in order]
    assert values == sorted(values)
    # The draws themselves are u**(1/a), independently recomputed from the same generator.
    u = torch.rand(6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    torch.testing.assert_close(sorted(values), sorted((u ** (1 / 3.0)).float().tolist()))


def test_fixed_generator_gives_fixed_targets():
    confidence, labels = torch.rand(16), torch.randint(0, K, (16,))
    t1 = beta_smoothing_targets(confidence, labels, K, generator=torch.Generator().manual_seed(7))
    t2 = beta_smoothing_targets(confidence, labels, K, generator=torch.Generator().manual_seed(7))
    t3 = beta_smoothing_targets(confidence, labels, K, generator=torch.Generator().manual_seed(8))
    assert torch.equal(t1, t2)
    assert not torch.equal(t1, t3)


@pytest.mark.parametrize("a", [1.0, 3.0, 10.0])
def test_draws_have_the_moments_of_beta_a_1(a):
    n = 200_000
    labels = torch.zeros(n, dtype=torch.long)
    t = beta_smoothing_targets(torch.rand(n), labels, 2, a, torch.Generator().manual_seed(0))
    b = t[:, 0].double()
    mean, var = a / (a + 1), a / ((a + 1) ** 2 * (a + 2))
    assert b.mean().item() == pytest.approx(mean, abs=3e-3)
    assert b.var().item() == pytest.approx(var, rel=3e-2)


def test_beta_targets_edge_cases():
    empty = beta_smoothing_targets(torch.zeros(0), torch.zeros(0, dtype=torch.long), K)
    assert empty.shape == (0, K)
    with pytest.raises(ValueError):
        beta_smoothing_targets(torch.rand(3), torch.tensor([0, 1, K]), K)
    with pytest.raises(ValueError):
        beta_smoothing_targets(torch.rand(3), torch.tensor([0, 1, 2]), K, a=0.0)
    with pytest.raises(ValueError):
        beta_smoothing_targets(torch.rand(4), torch.tensor([0, 1, 2]), K)


# --- EMA teacher ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "step, value", [(1, 0.5), (2, 2 / 3), (10, 10 / 11), (999, 0.999), (1000, 0.999)]
)
def test_ema_decay_schedule(step, value):
    assert ema_decay(step) == pytest.approx(value, abs=1e-12)


def test_ema_decay_rejects_step_zero():
    with pytest.raises(ValueError):
        ema_decay(0)


def test_ema_teacher_matches_manual_average():
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    teacher = EMATeacher(model)
    expected = model.weight.detach().clone()
    for step in range(1, 6):
        with torch.no_grad():
            model.weight.add_(torch.randn_like(model.weight))
        lam = min(1 - 1 / (step + 1), 0.999)
        expected = lam * expected + (1 - lam) * model.weight.detach()
        assert teacher.update(model) == pytest.approx(lam)
    torch.testing.assert_close(teacher.module.weight, expected)
    assert not any(p.requires_grad for p in teacher.parameters())


# --- losses --------------------------------------------------------------------------------


def test_self_distillation_loss_matches_direct_computation():
    logits, labels = _batch()
    confidence = torch.rand(32)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    loss = SelfDistillationLoss(alpha=0.6, a=3.0)(logits, labels, confidence, g1)
    t = beta_smoothing_targets(confidence, labels, K, 3.0, g2)
    p = logits.double().softmax(dim=1)
    total = 0.0
    for i in range(32):
        ce = -math.log(p[i, labels[i]].item())
        soft = -sum(t[i, k].item() * math.log(p[i, k].item() + 1e-8) for k in range(K))
        total += 0.4 * ce + 0.6 * soft
    assert loss.item() == pytest.approx(total / 32, rel=1e-5)


def test_distillation_loss_limits():
    logits, labels = _batch()
    teacher = torch.rand(32, K).softmax(dim=1)
    ce = F.cross_entropy(logits, labels)
    torch.testing.assert_close(DistillationLoss(alpha=0.0)(logits, labels, teacher), ce)
    one_hot = F.one_hot(labels, K).float()
    torch.testing.assert_close(DistillationLoss(alpha=1.0)(logits, labels, one_hot), ce)
    with pytest.raises(ValueError):
        DistillationLoss(alpha=1.5)


def test_uniform_smoothing_over_k_minus_1_differs_from_torch():
    logits, labels = _batch()
    eps = 0.1
    ours = soft_cross_entropy(logits, uniform_smoothing_targets(labels, K, eps), eps=0.0)
    # Closed form of the paper's version, computed independently with log-softmax.
    logp = logits.log_softmax(dim=1)
    nll = -logp.gather(1, labels[:, None]).squeeze(1)
    rest = -logp.sum(dim=1) - nll  # sum over the K - 1 wrong classes of -log p_k
    paper = ((1 - eps) * nll + eps / (K - 1) * rest).mean()
    torch.testing.assert_close(ours, paper)
    # torch's label_smoothing spreads eps / K over all K classes: a different number.
    torch_value = F.cross_entropy(logits, labels, label_smoothing=eps)
    torch_form = ((1 - eps) * nll + eps / K * (-logp.sum(dim=1))).mean()
    torch.testing.assert_close(torch_value, torch_form)
    assert abs(ours.item() - torch_value.item()) > 1e-4


def test_uniform_targets_values():
    t = uniform_smoothing_targets(torch.tensor([2, 0]), 5, 0.2)
    assert t[0].tolist() == pytest.approx([0.05, 0.05, 0.8, 0.05, 0.05])
    assert t[1].tolist() == pytest.approx([0.8, 0.05, 0.05, 0.05, 0.05])
    with pytest.raises(ValueError):
        uniform_smoothing_targets(torch.tensor([0]), 1, 0.1)


# --- calibration ---------------------------------------------------------------------------


def _two_class(confidence: float, n: int, n_correct: int):
    probs = torch.tensor([[confidence, 1 - confidence]]).repeat(n, 1)
    labels = torch.tensor([0] * n_correct + [1] * (n - n_correct))
    return probs, labels


def test_ece_is_zero_when_calibrated():
    p1, y1 = _two_class(0.8, 10, 8)  # 80 % confident, 80 % right
    p2, y2 = _two_class(0.6, 5, 3)  # 60 % confident, 60 % right
    probs, labels = torch.cat([p1, p2]), torch.cat([y1, y2])
    assert expected_calibration_error(probs, labels) == pytest.approx(
        0.0, abs=1e-7
    )  # float32 probabilities


def test_ece_of_known_miscalibrated_case():
    p1, y1 = _two_class(0.9, 10, 5)  # gap 0.4 on 10 samples
    p2, y2 = _two_class(0.6, 10, 9)  # gap 0.3 on 10 samples
    ece = expected_calibration_error(torch.cat([p1, p2]), torch.cat([y1, y2]))
    assert ece == pytest.approx(0.5 * 0.4 + 0.5 * 0.3)


def test_ece_matches_brute_force_loop():
    logits, labels = _batch(n=500, seed=2)
    probs = (3 * logits).softmax(dim=1)
    n_bins = 15
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        members = [i for i in range(500) if lo < probs[i].max().item() <= hi]
        if members:
            acc = sum(int(probs[i].argmax() == labels[i]) for i in members) / len(members)
            conf = sum(probs[i].max().item() for i in members) / len(members)
            total += len(members) / 500 * abs(acc - conf)
    assert expected_calibration_error(probs, labels, n_bins) == pytest.approx(total, abs=1e-6)


def test_reliability_diagram_bins():
    probs, labels = _two_class(0.9, 4, 3)
    diagram = reliability_diagram(probs, labels, n_bins=10)
    assert diagram.count.sum().item() == 4 and diagram.count[8].item() == 4
    assert diagram.accuracy[8].item() == pytest.approx(0.75)
    assert diagram.confidence[8].item() == pytest.approx(0.9)
    assert torch.isnan(diagram.accuracy[:8]).all()
    with pytest.raises(ValueError):
        reliability_diagram(probs, labels, n_bins=0)
    with pytest.raises(ValueError):
        expected_calibration_error(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))


# --- adapters for the shared training loop -------------------------------------------------


def test_objectives_train_with_fit():
    torch.manual_seed(0)
    x, y = torch.randn(40, 1, 8, 8), torch.randint(0, K, (40,))
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, K))
    teacher_probs = torch.rand(40, K).softmax(dim=1)
    objective = DistillationObjective(y, teacher_probs, alpha=0.6)
    index = torch.arange(5)
    logits = model(x[:5])
    torch.testing.assert_close(
        objective(logits, index), DistillationLoss(0.6)(logits, y[:5], teacher_probs[:5])
    )
    beta = BetaSmoothingObjective(model, x, y, seed=0)
    history = fit(model, x, torch.arange(40), x, y, epochs=2, batch_size=16, loss_fn=beta)
    assert all(math.isfinite(v) for v in history.train_loss)
    assert beta.teacher.step == 6  # 3 batches per epoch, 2 epochs
    assert sum(1 for _ in beta.parameters()) == 2  # the EMA copy only, not the student
