"""Tests of initdocs.rsb against direct computations and the paper's recipe table."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from initdocs.resnet import DropPath, resnet50, resnet_cifar
from initdocs.rsb import (
    RECIPES,
    UNVERIFIED,
    Lamb,
    RepeatedAugSampler,
    WarmupCosine,
    binary_cross_entropy,
    cosine_with_warmup,
    cutmix,
    cutmix_box,
    fit_rsb,
    mix_batch,
    mixup,
    recipe_table,
)

# ---- LAMB ------------------------------------------------------------------------------------


def _lamb_reference(weights, grads_per_step, wds, lr, b1=0.9, b2=0.999, eps=1e-6, clip=1.0):
    """LAMB's equations written out in NumPy float64, one tensor at a time."""
    w = [np.array(x, dtype=np.float64) for x in weights]
    m = [np.zeros_like(x) for x in w]
    v = [np.zeros_like(x) for x in w]
    for t, grads in enumerate(grads_per_step, start=1):
        g_norm = math.sqrt(sum(float((g**2).sum()) for g in grads))
        scale = max(1.0, g_norm / clip)
        for i, (g, wd) in enumerate(zip(grads, wds, strict=True)):
            g = g / scale
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            r = (m[i] / (1 - b1**t)) / (np.sqrt(v[i] / (1 - b2**t)) + eps)
            if wd != 0:
                u = r + wd * w[i]
                ratio = np.linalg.norm(w[i]) / np.linalg.norm(u)
                w[i] = w[i] - lr * ratio * u
            else:
                w[i] = w[i] - lr * r
    return w


@pytest.mark.parametrize("grad_scale", [0.01, 10.0])  # below and above the clipping norm
def test_lamb_matches_its_equations(grad_scale):
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(4, 3)), rng.normal(size=(5,))]
    steps = [[grad_scale * rng.normal(size=w.shape) for w in weights] for _ in range(4)]
    params = [torch.nn.Parameter(torch.tensor(w)) for w in weights]  # float64
    opt = Lamb(
        [{"params": [params[0]], "weight_decay": 0.02}, {"params": [params[1]], "weight_decay": 0}],
        lr=0.05,
    )
    for grads in steps:
        for p, g in zip(params, grads, strict=True):
            p.grad = torch.tensor(g)
        opt.step()
        # the optimizer must not clip p.grad in place
        assert torch.equal(params[0].grad, torch.tensor(grads[0]))
    expected = _lamb_reference(weights, steps, [0.02, 0.0], lr=0.05)
    for p, e in zip(params, expected, strict=True):
        np.testing.assert_allclose(p.detach().numpy(), e, rtol=1e-12, atol=1e-14)


def test_lamb_trust_ratio_sets_step_length():
    # With weight decay, one step moves the tensor by exactly lr * ||w|| (the trust ratio).
    w = torch.nn.Parameter(torch.tensor([3.0, 4.0], dtype=torch.float64))
    w.grad = torch.tensor([0.1, -0.2], dtype=torch.float64)
    before = w.detach().clone()
    Lamb([w], lr=0.1, weight_decay=0.01).step()
    assert (w.detach() - before).norm().item() == pytest.approx(0.1 * 5.0, rel=1e-12)


def test_lamb_rejects_bad_arguments():
    p = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError):
        Lamb(p, lr=-1.0)
    with pytest.raises(ValueError):
        Lamb(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError):
        Lamb(p, max_grad_norm=0.0)


# ---- Schedule ----------------------------------------------------------------------------------


def test_cosine_with_warmup_values():
    base, total, warm = 8e-3, 105, 5
    assert [cosine_with_warmup(s, total, warm, base) for s in range(5)] == pytest.approx(
        [base * k / 5 for k in range(1, 6)]
    )
    assert cosine_with_warmup(5, total, warm, base) == pytest.approx(base)
    assert cosine_with_warmup(55, total, warm, base) == pytest.approx(base / 2)  # half-way
    assert cosine_with_warmup(30, total, warm, base) == pytest.approx(
        base * (1 + math.cos(math.pi / 4)) / 2
    )
    assert cosine_with_warmup(105, total, warm, base, min_lr=1e-5) == pytest.approx(1e-5)
    with pytest.raises(ValueError):
        cosine_with_warmup(0, 10, 10, base)
    with pytest.raises(ValueError):
        cosine_with_warmup(-1, 10, 2, base)


def test_warmup_cosine_sets_each_groups_rate_before_every_step():
    a, b = nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([{"params": [a], "lr": 0.4}, {"params": [b], "lr": 0.1}])
    schedule = WarmupCosine(optimizer, total_steps=10, warmup_steps=3)
    used = []
    for _ in range(10):
        used.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        schedule.step()
    # warm-up 0.4 * 1/3, 2/3, 3/3, then a half cosine over the remaining 7 steps
    assert used[:3] == [[0.4 * k / 3, 0.1 * k / 3] for k in (1, 2, 3)]
    assert used[3] == [0.4, 0.1]
    cosine = (1 + math.cos(math.pi * 6 / 7)) / 2  # the last step, 6 of 7 past the warm-up
    assert used[-1] == pytest.approx([0.4 * cosine, 0.1 * cosine])
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupCosine(optimizer, total_steps=3, warmup_steps=3)


# ---- Mixup, cutmix, BCE ---------------------------------------------------------------------


def test_mixup_blends_images_and_targets():
    x = torch.randn(4, 1, 6, 6)
    y = torch.tensor([0, 1, 2, 3])
    mixed, t = mixup(x, y, 5, lam=0.7)
    torch.testing.assert_close(mixed[0], 0.7 * x[0] + 0.3 * x[3])
    torch.testing.assert_close(t.sum(1), torch.ones(4))
    assert t[0, 0].item() == pytest.approx(0.7) and t[0, 3].item() == pytest.approx(0.3)
    with pytest.raises(ValueError):
        mixup(x, y, 5, lam=1.5)


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.62, 0.95, 1.0])
def test_cutmix_lambda_is_the_kept_area(lam):
    rng = np.random.default_rng(1)
    x = torch.arange(4 * 2 * 10 * 12, dtype=torch.float32).reshape(4, 2, 10, 12)  # all distinct
    y = torch.tensor([3, 1, 4, 1])
    mixed, t, lam_used = cutmix(x, y, 6, lam, rng)
    kept = (mixed == x).all(dim=1).float().mean(dim=(1, 2))  # fraction of original pixels
    torch.testing.assert_close(kept, torch.full((4,), lam_used))
    torch.testing.assert_close(t.sum(1), torch.ones(4))
    assert t[0, 3].item() == pytest.approx(lam_used + (1 - lam_used) * (y[3] == 3).item())


def test_cutmix_box_stays_inside_the_image():
    rng = np.random.default_rng(0)
    for _ in range(200):
        top, bottom, left, right = cutmix_box(7, 9, float(rng.uniform()), rng)
        assert 0 <= top <= bottom <= 7 and 0 <= left <= right <= 9


def test_mix_batch_targets_sum_to_one_with_smoothing():
    rng = np.random.default_rng(0)
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    for _ in range(10):
        mixed, t = mix_batch(x, y, 10, rng, 0.2, 1.0, smoothing=0.1)
        assert mixed.shape == x.shape and t.shape == (8, 10)
        torch.testing.assert_close(t.sum(1), torch.ones(8))
        assert t.min().item() >= 0.01 - 1e-7  # smoothing gives every class 0.1 / 10
    with pytest.raises(ValueError):
        mix_batch(x, y, 10, rng, 0.0, 0.0)


def test_binary_cross_entropy_matches_direct_formula():
    torch.manual_seed(0)
    z = torch.randn(5, 7, dtype=torch.float64)
    t = torch.softmax(torch.randn(5, 7, dtype=torch.float64), dim=1)
    s = 1 / (1 + torch.exp(-z))
    direct = -(t * torch.log(s) + (1 - t) * torch.log(1 - s)).mean()
    torch.testing.assert_close(binary_cross_entropy(z, t), direct)
    hard = (t > 0.2).double()
    direct_hard = -(hard * torch.log(s) + (1 - hard) * torch.log(1 - s)).mean()
    torch.testing.assert_close(binary_cross_entropy(z, t, target_threshold=0.2), direct_hard)
    idx = torch.tensor([0, 6, 3, 3, 1])
    one_hot = torch.nn.functional.one_hot(idx, 7).double()
    torch.testing.assert_close(binary_cross_entropy(z, idx), binary_cross_entropy(z, one_hot))
    with pytest.raises(ValueError):
        binary_cross_entropy(z, t[:, :3])


# ---- Repeated augmentation --------------------------------------------------------------------


def test_repeated_sampler_counts():
    sampler = RepeatedAugSampler(10, repeats=3, seed=0)
    order = list(sampler)
    assert len(order) == len(sampler) == 30
    assert np.bincount(order, minlength=10).tolist() == [3] * 10
    assert all(order[i] == order[i + 1] == order[i + 2] for i in range(0, 30, 3))


def test_repeated_sampler_shards_copies_over_replicas():
    shards = [list(RepeatedAugSampler(8, 3, num_replicas=3, rank=r, seed=5)) for r in range(3)]
    assert all(len(s) == 8 for s in shards)
    assert sorted(s for shard in shards for s in shard) == sorted(list(range(8)) * 3)
    assert shards[0] == shards[1] == shards[2]  # each replica sees every copy's image once
    truncated = RepeatedAugSampler(8, 3, num_replicas=3, rank=0, num_selected=5, seed=5)
    assert list(truncated) == shards[0][:5] and len(truncated) == 5


def test_truncated_repeated_epoch_shows_a_third_of_the_images():
    # As DeiT and timm use it: each replica keeps len(data) / replicas indices, so an epoch has
    # as many samples as the data set, and with 3 repeats it shows about a third of the images.
    n, replicas = 999, 9
    epoch = [
        i
        for rank in range(replicas)
        for i in RepeatedAugSampler(
            n, repeats=3, num_replicas=replicas, rank=rank, num_selected=n // replicas, seed=1
        )
    ]
    assert len(epoch) == n
    assert len(set(epoch)) == n // 3  # 999 = 3 * 333: every selected image comes with 3 views
    assert np.bincount(epoch).max() == 3


def test_repeated_sampler_rejects_bad_arguments():
    with pytest.raises(ValueError):
        RepeatedAugSampler(0)
    with pytest.raises(ValueError):
        RepeatedAugSampler(5, num_replicas=2, rank=2)
    with pytest.raises(ValueError):
        RepeatedAugSampler(5, repeats=2, num_selected=11)


# ---- Stochastic depth and the recipes ----------------------------------------------------------


def test_resnet50_drop_path_rates_rise_linearly():
    model = resnet50(drop_path_rate=0.05)
    rates = [m.p for m in model.modules() if isinstance(m, DropPath)]
    assert len(rates) == 16
    np.testing.assert_allclose(rates, [0.05 * i / 15 for i in range(16)])
    assert rates[1] == pytest.approx(0.00333, abs=1e-5)


def test_recipes_match_the_paper_table():
    # Values of the research notes (paper Table 1, cross-checked with timm and mmpretrain).
    expected = {
        "epochs": (600, 300, 100),
        "train_resolution": (224, 224, 160),
        "test_resolution": (224, 224, 224),
        "batch_size": (2048, 2048, 2048),
        "optimizer": ("LAMB",) * 3,
        "lr": (5e-3, 5e-3, 8e-3),
        "weight_decay": (0.01, 0.02, 0.02),
        "warmup_epochs": (5, 5, 5),
        "schedule": ("cosine",) * 3,
        "loss": ("BCE",) * 3,
        "label_smoothing": (0.1, None, None),
        "mixup_alpha": (0.2, 0.1, 0.1),
        "cutmix_alpha": (1.0, 1.0, 1.0),
        "randaugment": ((7, 0.5), (7, 0.5), (6, 0.5)),
        "drop_path_rate": (0.05, 0.05, None),
        "repeated_augmentation": (True, True, False),
        "test_crop": (0.95, 0.95, 0.95),
        "top1": (80.4, 79.8, 78.1),
    }
    assert list(RECIPES) == ["A1", "A2", "A3"]
    for field, values in expected.items():
        assert tuple(getattr(RECIPES[n], field) for n in RECIPES) == values, field
    assert ("A1", "label_smoothing") in UNVERIFIED and ("A1", "top1") not in UNVERIFIED
    table = recipe_table()
    assert table.count("\n") == 17 and "0.1†" in table and "80.4 |" in table


def test_fit_rsb_trains_without_nans():
    torch.manual_seed(0)
    x, y = torch.rand(40, 1, 8, 8), torch.randint(0, 10, (40,))
    model = resnet_cifar(8, in_channels=1, drop_path_rate=0.05)
    history = fit_rsb(model, x, y, x, y, num_classes=10, epochs=2, warmup_epochs=1, seed=0)
    assert len(history.test_accuracy) == 2 and all(math.isfinite(v) for v in history.train_loss)
    with pytest.raises(ValueError):
        fit_rsb(model, x, y, x, y, num_classes=10, epochs=2, warmup_epochs=2)
