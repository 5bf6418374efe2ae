"""FPGM filter pruning against brute force, the paper's FLOPs (Table 1) and the abstract."""

import itertools
import math

import pytest
import torch
from torch import nn

from initdocs import count_macs
from initdocs.data import Split
from initdocs.pruning import (
    SoftFilterPruner,
    fpgm_flops,
    fpgm_select,
    geometric_median,
    geometric_median_scores,
    norm_select,
    random_select,
    recalibrate_batchnorm,
    shrink_blocks,
    soft_prune_train,
)
from initdocs.resnet import BasicBlock, resnet_cifar
from initdocs.train import accuracy


def brute_force_scores(weight: torch.Tensor) -> list[float]:
    flat = weight.reshape(weight.shape[0], -1).double().tolist()
    return [sum(math.dist(a, b) for b in flat) for a in flat]


@pytest.mark.parametrize("shape", [(16, 3, 3, 3), (7, 5, 1, 1), (12, 40)])
def test_scores_and_selection_match_brute_force(shape):
    weight = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    reference = brute_force_scores(weight)
    scores = geometric_median_scores(weight)
    assert scores.tolist() == pytest.approx(reference, rel=1e-5)
    for n in range(shape[0] + 1):
        expected = sorted(range(shape[0]), key=lambda i: reference[i])[:n]
        assert sorted(fpgm_select(weight, n).tolist()) == sorted(expected)


def test_fpgm_minimizes_the_summed_distance_over_all_subsets():
    """Choosing the n smallest scores minimizes the summed score, checked by enumeration."""
    weight = torch.randn(8, 2, 3, 3, generator=torch.Generator().manual_seed(2))
    scores = brute_force_scores(weight)
    best = min(itertools.combinations(range(8), 3), key=lambda s: sum(scores[i] for i in s))
    assert sorted(fpgm_select(weight, 3).tolist()) == sorted(best)


def test_fpgm_prunes_the_filter_at_the_centre_not_the_smallest():
    # Four filters at the corners of a square around (5, 5), one at its centre, one near 0.
    points = torch.tensor([[4.0, 4], [6, 4], [4, 6], [6, 6], [5, 5], [0.1, 0.1]])
    assert fpgm_select(points, 1).tolist() == [4]
    assert norm_select(points, 1).tolist() == [5]
    median = geometric_median(points[:5])
    assert torch.allclose(median, torch.tensor([5.0, 5.0]), atol=1e-5)


def test_norm_select_matches_sorted_norms():
    weight = torch.randn(10, 4, 3, 3, generator=torch.Generator().manual_seed(3))
    norms = [math.sqrt(sum(v * v for v in row)) for row in weight.reshape(10, -1).tolist()]
    assert norm_select(weight, 4).tolist() == sorted(range(10), key=norms.__getitem__)[:4]


def test_ties_go_to_the_lower_index_and_edge_cases():
    weight = torch.ones(5, 2, 3, 3)  # every filter identical: all scores and norms tie
    assert fpgm_select(weight, 2).tolist() == [0, 1]
    assert norm_select(weight, 3).tolist() == [0, 1, 2]
    assert geometric_median_scores(weight).tolist() == [0.0] * 5
    for select in (fpgm_select, norm_select, random_select):
        assert select(weight, 0).numel() == 0
        assert sorted(select(weight, 5).tolist()) == [0, 1, 2, 3, 4]
        with pytest.raises(ValueError, match="n_prune"):
            select(weight, 6)
        with pytest.raises(ValueError, match="n_prune"):
            select(weight, -1)
    with pytest.raises(ValueError, match="one row per filter"):
        geometric_median_scores(torch.ones(4))


def test_random_select_is_seeded_and_distinct():
    weight = torch.randn(20, 3)
    a = random_select(weight, 8, torch.Generator().manual_seed(0))
    b = random_select(weight, 8, torch.Generator().manual_seed(0))
    assert a.tolist() == b.tolist() and len(set(a.tolist())) == 8


@pytest.mark.parametrize("criterion", ["fpgm", "norm", "random"])
@pytest.mark.parametrize("rate", [0.0, 0.3, 0.4])
def test_soft_pruner_zeroes_int_n_rate_filters_per_layer_and_leaves_bn(criterion, rate):
    torch.manual_seed(0)
    model = resnet_cifar(20)
    bn_before = {k: v.clone() for k, v in model.state_dict().items() if "bn" in k or "stem.1" in k}
    pruner = SoftFilterPruner(model, rate, criterion)
    pruned = pruner.step()
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 19 and set(pruned) == {n for n, _ in convs}  # stem + 18 block convs
    for name, conv in convs:
        zero = (conv.weight.reshape(conv.out_channels, -1) == 0).all(dim=1)
        assert int(zero.sum()) == int(conv.out_channels * rate)  # 6 of 16, 12 of 32, 25 of 64
        assert sorted(torch.nonzero(zero).flatten().tolist()) == sorted(pruned[name].tolist())
    for k, v in model.state_dict().items():
        if k in bn_before:
            assert torch.equal(v, bn_before[k]), k
    assert model.fc.weight.abs().min() > 0  # the classifier is not pruned


def test_reselected_counts_filters_chosen_at_two_steps_in_a_row():
    torch.manual_seed(0)
    model = resnet_cifar(8)
    pruner = SoftFilterPruner(model, 0.5, "norm")
    pruner.step()
    assert pruner.reselected == []  # nothing to compare with at the first step
    pruner.step()  # the zeroed filters have the smallest norm: the same choice again
    assert pruner.reselected == [1.0]
    first = {name: set(index.tolist()) for name, index in pruner.pruned.items()}
    with torch.no_grad():
        for name, conv in pruner.convs.items():  # regrow the pruned filters past all others
            conv.weight[pruner.pruned[name]] = 10.0
    pruner.step()
    assert pruner.reselected[-1] == 0.0
    assert all(not first[name] & set(index.tolist()) for name, index in pruner.pruned.items())


def test_pruner_counts_follow_the_authors_int():
    pruner = SoftFilterPruner(nn.Conv2d(1, 1, 1), 0.4)
    assert [pruner.n_prune(n) for n in (16, 32, 64)] == [6, 12, 25]
    pruner = SoftFilterPruner(nn.Conv2d(1, 1, 1), 0.3)
    assert [pruner.n_prune(n) for n in (16, 32, 64)] == [4, 9, 19]
    with pytest.raises(ValueError, match="rate"):
        SoftFilterPruner(nn.Conv2d(1, 1, 1), 1.0)
    with pytest.raises(ValueError, match="criterion"):
        SoftFilterPruner(nn.Conv2d(1, 1, 1), 0.4, "taylor")


def test_flops_accounting_matches_the_paper():
    # Table 1: ResNet-56 at 40 %: 5.94E7 FLOPs, a 52.6 % reduction.
    assert fpgm_flops(56, 0.0) == 125_485_056
    assert fpgm_flops(56, 0.4) == 59_436_564
    assert round(100 * (1 - 59_436_564 / 125_485_056), 1) == 52.6
    # Abstract: "more than 52%" of FLOPs removed from ResNet-110 (at 40 %).
    assert fpgm_flops(110, 0.0) == 252_887_040
    assert fpgm_flops(110, 0.4) == 120_589_516
    assert 1 - fpgm_flops(110, 0.4) / fpgm_flops(110, 0.0) > 0.52
    with pytest.raises(ValueError, match="6n"):
        fpgm_flops(51, 0.4)


@pytest.mark.parametrize("depth", [20, 56, 110])
def test_unpruned_accounting_is_the_counted_convolution_cost(depth):
    """At rate 0 the authors' count equals our counter's MACs minus the classifier's 640."""
    macs = count_macs(resnet_cifar(depth), torch.zeros(1, 3, 32, 32))
    assert fpgm_flops(depth, 0.0) == macs - 64 * 10


def test_physical_removal_of_first_convolutions():
    model = resnet_cifar(56)
    x = torch.zeros(1, 3, 32, 32)
    assert count_macs(model, x) == 125_485_696
    small = shrink_blocks(model, 0.4)
    assert count_macs(small, x) == 77_949_568
    # Closed form: each block keeps N - int(0.4 N) filters in conv1, 9 blocks per stage.
    expected = 16 * 1024 * 27 + 640
    for width, side, c_in in ((16, 32, 16), (32, 16, 16), (64, 8, 32)):
        kept = width - int(0.4 * width)
        expected += side**2 * 9 * kept * (c_in + width)  # first block: c_in -> kept -> width
        expected += 8 * side**2 * 9 * kept * (width + width)
    assert count_macs(small, x) == expected


def test_shrunk_network_equals_masked_network_when_pruned_channels_are_silent():
    """Removing filters is exact when a zeroed channel stays zero after batch norm + ReLU."""
    torch.manual_seed(0)
    model = resnet_cifar(20).eval()
    small = shrink_blocks(model, 0.4, "norm")
    for block in model.modules():
        if isinstance(block, BasicBlock):
            drop = norm_select(block.conv1.weight, int(0.4 * block.conv1.out_channels))
            with torch.no_grad():
                block.conv1.weight[drop] = 0.0
                block.bn1.bias[drop] = -1.0  # relu(bn(0)) = relu(-1) = 0: a silent channel
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), small(x), atol=1e-5)


def test_recalibration_and_soft_prune_training_run_and_keep_masks():
    g = torch.Generator().manual_seed(0)
    data = Split(
        torch.rand(64, 1, 8, 8, generator=g),
        torch.randint(0, 10, (64,), generator=g),
        torch.rand(32, 1, 8, 8, generator=g),
        torch.randint(0, 10, (32,), generator=g),
        tuple("0123456789"),
    )
    torch.manual_seed(0)
    model = resnet_cifar(8, in_channels=1)
    run = soft_prune_train(model, data, 0.5, "fpgm", epochs=2)
    # one accuracy after each pruning (the first before any training), one loss per epoch
    assert len(run.test_accuracy) == 3 and all(0.0 <= a <= 1.0 for a in run.test_accuracy)
    assert run.test_accuracy[-1] == accuracy(model, data.x_test, data.y_test)
    assert len(run.train_loss) == 2 and all(math.isfinite(v) for v in run.train_loss)
    assert len(run.reselected) == 2 and all(0.0 <= r <= 1.0 for r in run.reselected)
    zero = (model.stem[0].weight.reshape(16, -1) == 0).all(dim=1)
    assert int(zero.sum()) == 8
    # After recalibration a zeroed channel's batch-norm mean is exactly 0.
    recalibrate_batchnorm(model, data.x_train)
    assert torch.equal(model.stem[1].running_mean[zero], torch.zeros(8))
    assert model.stem[1].momentum == 0.1
