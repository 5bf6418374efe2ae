"""The shared data and training loop: real offline data, deterministic runs."""

import pytest
import torch
from torch import nn

from initdocs.data import load_digits_split
from initdocs.train import accuracy, adamw, fit, seed_everything


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


def test_fit_equals_a_plain_loop_with_torchs_default_adamw():
    """fit's AdamW runs torch's fused kernel for speed; the weights must be those of the plain
    loop below, written with torch's default (per-tensor) AdamW and the cosine decay over every
    step, up to the rounding of a different summation order."""
    split = load_digits_split(seed=0)
    x, y = split.x_train[:300], split.y_train[:300]

    def fresh():
        torch.manual_seed(5)
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))

    ours = fresh()
    fit(ours, x, y, split.x_test[:10], split.y_test[:10], epochs=3, lr=1e-2, batch_size=64, seed=3)

    reference = fresh()
    optimizer = torch.optim.AdamW(reference.parameters(), lr=1e-2, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 3 * 5)  # 5 batches/epoch
    generator = torch.Generator().manual_seed(3)
    for _ in range(3):
        order = torch.randperm(300, generator=generator)
        for start in range(0, 300, 64):
            batch = order[start : start + 64]
            loss = nn.functional.cross_entropy(reference(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    for a, b in zip(ours.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_the_books_adamw_is_torchs_fused_kernel_with_decoupled_weight_decay():
    weight = nn.Parameter(torch.ones(3))
    optimizer = adamw([weight], lr=0.1, weight_decay=0.5)
    assert optimizer.defaults["fused"] is True
    weight.grad = torch.zeros(3)  # no gradient: only the decoupled decay moves the weight
    optimizer.step()
    torch.testing.assert_close(weight.detach(), torch.full((3,), 1 - 0.1 * 0.5))


def test_accuracy_matches_a_direct_count():
    split = load_digits_split(seed=0)
    model, _ = _run(seed=2)
    with torch.no_grad():
        direct = (model(split.x_test).argmax(1) == split.y_test).float().mean().item()
    assert accuracy(model, split.x_test, split.y_test, batch_size=7) == pytest.approx(direct)


def test_fit_without_a_test_set_trains_the_same_weights_and_records_no_tests():
    split = load_digits_split(seed=0)
    x, y = split.x_train[:200], split.y_train[:200]
    models, histories = [], []
    for test in ((split.x_test, split.y_test), (None, None)):
        torch.manual_seed(4)
        models.append(nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)))
        histories.append(fit(models[-1], x, y, *test, epochs=4, lr=1e-2, seed=2))
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        assert torch.equal(a, b)  # testing after each epoch changes nothing in training
    assert histories[0].train_loss == histories[1].train_loss
    assert len(histories[0].test_accuracy) == 4 and histories[1].test_accuracy == []
    with pytest.raises(ValueError, match="or neither"):
        fit(models[1], x, y, split.x_test, None, epochs=1)


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


def test_evaluating_switches_off_training_and_gradients_then_restores_the_mode():
    from initdocs.train import evaluating

    net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Dropout(0.5))
    for mode in (True, False):
        net.train(mode)
        with evaluating(net):
            assert not net.training and not net[1].training
            assert not torch.is_grad_enabled()
            out = net(torch.ones(2, 3))
        assert net.training is mode and torch.is_grad_enabled()
        assert not out.requires_grad
    with pytest.raises(RuntimeError), evaluating(net.train()):
        raise RuntimeError("inside")
    assert net.training  # restored even when the block raises


def test_train_epoch_returns_the_example_weighted_mean_loss_of_its_steps():
    from initdocs.train import train_epoch

    # One SGD step on a batch of 3 and one on a batch of 1, done by hand for comparison.
    torch.manual_seed(0)
    net = torch.nn.Linear(2, 1, bias=False)
    ref = torch.nn.Linear(2, 1, bias=False)
    ref.load_state_dict(net.state_dict())
    x, y = torch.randn(4, 2), torch.randn(4, 1)
    batches = [(x[:3], y[:3]), (x[3:], y[3:])]
    mse = torch.nn.functional.mse_loss
    mean = train_epoch(net, torch.optim.SGD(net.parameters(), lr=0.1), batches, mse)
    losses = []
    for xb, yb in batches:
        loss = mse(ref(xb), yb)
        ref.zero_grad()
        loss.backward()
        with torch.no_grad():
            ref.weight -= 0.1 * ref.weight.grad
        losses.append(loss.item())
    assert mean == pytest.approx((3 * losses[0] + 1 * losses[1]) / 4)
    assert torch.allclose(net.weight, ref.weight)


def test_train_epoch_clips_the_gradient_norm_and_steps_the_schedule():
    from initdocs.train import train_epoch

    net = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(net.weight)
    optimizer = torch.optim.SGD(net.parameters(), lr=1.0)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    batch = (torch.ones(1, 1), torch.full((1, 1), 100.0))  # gradient -200, clipped to norm 1
    train_epoch(net, optimizer, [batch], torch.nn.functional.mse_loss, schedule=schedule, clip=1.0)
    assert net.weight.item() == pytest.approx(1.0)  # w - lr * clipped gradient = 0 + 1
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no batches"):
        train_epoch(net, optimizer, [], torch.nn.functional.mse_loss)


def test_history_records_named_series_and_reads_them_back():
    from initdocs.train import History

    history = History()
    history.record(train_loss=0.5, test_accuracy=0.8, sequence_accuracy=0.25)
    history.record(train_loss=0.25, test_accuracy=0.9, sequence_accuracy=0.5)
    assert history.train_loss == [0.5, 0.25] and history.final_accuracy == 0.9
    assert history.sequence_accuracy == [0.25, 0.5]
    with pytest.raises(AttributeError, match="no series 'weights'"):
        _ = history.weights
