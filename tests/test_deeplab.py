"""DeepLabv2 against the paper's numbers, closed forms, torch's own layers and brute force."""

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from initdocs import count_parameters
from initdocs.deeplab import (
    ASPP,
    DenseCRF,
    ScoreBranch,
    atrous_by_subsampling,
    atrous_footprint,
    boundary_mask,
    deeplab_vgg16,
    deeplabv2_resnet101,
    effective_kernel_size,
    mean_iou,
    poly_lr,
    receptive_field,
    tiny_deeplab,
)
from initdocs.resnet import resnet101

VGG16_CONV = 14_714_688  # conv1_1 ... conv5_3 of VGG-16 with biases (torchvision: 14,714,688)


def _fc_layers(kernel: int, channels: int, classes: int = 21) -> int:
    """fc6 (k x k from 512), fc7 (1 x 1) and fc8 (1 x 1 to the classes), with biases."""
    return (kernel**2 * 512 + 1) * channels + (channels + 1) * channels + (channels + 1) * classes


# -- Parameter counts and shapes -------------------------------------------------------------


@pytest.mark.parametrize(
    ("kernel", "rate", "channels", "paper_millions", "exact"),
    [
        (7, 4, 4096, 134.3, 134_346_581),
        (4, 4, 4096, 65.1, 65_140_565),
        (4, 8, 4096, 65.1, 65_140_565),
        (3, 12, 1024, 20.5, 20_505_429),  # DeepLab-LargeFOV
    ],
)
def test_vgg16_variants_match_the_field_of_view_table(
    kernel, rate, channels, paper_millions, exact
):
    with torch.device("meta"):  # count without allocating 134M weights
        model = deeplab_vgg16(21, fc6_kernel=kernel, fc6_rate=rate, fc6_channels=channels)
    n = count_parameters(model)
    assert n == exact == VGG16_CONV + _fc_layers(kernel, channels)
    assert round(n / 1e6, 1) == paper_millions


def test_vgg16_backbone_has_the_vgg16_convolutions():
    with torch.device("meta"):
        features = deeplab_vgg16().backbone
    convs = [m for m in features.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13
    assert count_parameters(features) == VGG16_CONV
    assert [c.dilation[0] for c in convs] == [1] * 10 + [2] * 3


def test_vgg16_aspp_is_four_largefov_heads():
    with torch.device("meta"):
        model = deeplab_vgg16(aspp_rates=(6, 12, 18, 24))
    assert count_parameters(model) == VGG16_CONV + 4 * _fc_layers(3, 1024) == 37_877_652


@pytest.fixture(scope="module")
def resnet_deeplab():
    return deeplabv2_resnet101(num_classes=21).eval()


def test_resnet101_aspp_parameter_count(resnet_deeplab):
    fc = 2048 * 1000 + 1000
    head = 4 * (9 * 2048 * 21 + 21)  # four Conv2d(2048, 21, 3) with bias
    assert head == 1_548_372
    with torch.device("meta"):
        resnet = resnet101()
    assert count_parameters(resnet_deeplab) == count_parameters(resnet) - fc + head
    assert count_parameters(resnet_deeplab) == 44_048_532


def test_resnet101_output_stride_8(resnet_deeplab):
    with torch.no_grad():
        scores = resnet_deeplab.score_map(torch.zeros(1, 3, 321, 321))
        upsampled = resnet_deeplab(torch.zeros(1, 3, 129, 129))
    assert scores.shape == (1, 21, 41, 41)
    assert upsampled.shape == (1, 21, 129, 129)


def test_resnet101_dilations_follow_torchvision(resnet_deeplab):
    stages = resnet_deeplab.backbone.stages
    rates = [[b.conv2.dilation[0] for b in stage] for stage in stages]
    strides = [[b.conv2.stride[0] for b in stage] for stage in stages]
    assert rates[2] == [1] + [2] * 22 and rates[3] == [2, 4, 4]
    assert strides == [[1] * 3, [2, 1, 1, 1], [1] * 23, [1] * 3]


def test_vgg16_output_stride_8():
    model = deeplab_vgg16().eval()
    with torch.no_grad():
        assert model.score_map(torch.zeros(1, 3, 129, 129)).shape == (1, 21, 17, 17)


# -- ASPP ------------------------------------------------------------------------------------


@pytest.mark.parametrize("hidden", [None, 6])
def test_aspp_fuses_by_sum(hidden):
    torch.manual_seed(0)
    aspp = ASPP(8, 5, rates=(1, 2, 3), hidden_channels=hidden).eval()
    x = torch.randn(2, 8, 11, 11)
    direct = sum(branch(x) for branch in aspp.branches)
    torch.testing.assert_close(aspp(x), direct)
    assert aspp(x).shape == (2, 5, 11, 11)


def test_resnet_aspp_branch_is_a_dilated_convolution():
    torch.manual_seed(0)
    aspp = ASPP(4, 3, rates=(2, 5))
    x = torch.randn(1, 4, 16, 16)
    expected = sum(
        F.conv2d(x, b.layers[0].weight, b.layers[0].bias, padding=r, dilation=r)
        for b, r in zip(aspp.branches, (2, 5), strict=True)
    )
    torch.testing.assert_close(aspp(x), expected)


def test_bad_heads_are_refused():
    with pytest.raises(ValueError, match="rates"):
        ASPP(4, 3, rates=())
    with pytest.raises(ValueError, match="rates"):
        ASPP(4, 3, rates=(0, 2))
    with pytest.raises(ValueError, match="even"):
        ScoreBranch(4, 3, kernel_size=4, rate=3)
    with pytest.raises(ValueError, match="width"):
        tiny_deeplab(width=0)


@pytest.mark.parametrize("rates", [(1,), (2, 2, 2, 2), (1, 2, 3, 4)])
def test_tiny_deeplab_shapes(rates):
    net = tiny_deeplab(rates=rates, width=4)
    x = torch.randn(3, 1, 32, 32)
    assert net.score_map(x).shape == (3, 4, 8, 8)
    out = net(x)
    assert out.shape == (3, 4, 32, 32) and torch.isfinite(out).all()


# -- Atrous convolution ------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [1, 2, 3, 5])
def test_atrous_output_on_the_subsampled_grid_is_an_ordinary_convolution(rate):
    torch.manual_seed(rate)
    x, w = torch.randn(2, 3, 37, 41), torch.randn(4, 3, 3, 3)
    atrous = F.conv2d(x, w, dilation=rate)
    # Positions [::r, ::r] of the atrous output = ordinary convolution of x[::r, ::r].
    sub = F.conv2d(x[..., ::rate, ::rate], w)
    torch.testing.assert_close(atrous[..., ::rate, ::rate], sub)
    # All r * r phases together rebuild the whole atrous output.
    torch.testing.assert_close(atrous_by_subsampling(x, w, rate), atrous)


def test_atrous_by_subsampling_checks_sizes():
    with pytest.raises(ValueError, match="smaller"):
        atrous_by_subsampling(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 3, 3), 2)
    with pytest.raises(ValueError, match="rate"):
        atrous_by_subsampling(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 3, 3), 0)


@pytest.mark.parametrize(("k", "r"), list(itertools.product([1, 3, 5, 7], [1, 2, 4, 12])))
def test_effective_kernel_size_is_the_span_of_the_dilated_filter(k, r):
    conv = nn.Conv2d(1, 1, k, dilation=r, bias=False)
    assert effective_kernel_size(k, r) == k + (k - 1) * (r - 1)
    # The number of input pixels one output reads, found by torch: input size - output + 1.
    size = effective_kernel_size(k, r) + 4
    assert size - conv(torch.zeros(1, 1, size, size)).shape[-1] + 1 == effective_kernel_size(k, r)


@pytest.mark.parametrize("rates", [(1, 1, 1), (1, 2, 4), (2, 2, 2), (6, 12, 18, 24)])
def test_receptive_field_matches_the_gradient_support(rates):
    field = receptive_field([3] * len(rates), rates)
    assert field == 1 + 2 * sum(rates)
    size = field + 10
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    y = x
    for r in rates:
        y = F.conv2d(y, torch.ones(1, 1, 3, 3), padding=r, dilation=r)
    y[0, 0, size // 2, size // 2].backward()
    support = x.grad[0, 0].nonzero()
    extent = (support.max(0).values - support.min(0).values + 1).tolist()
    assert extent == [field, field]
    assert atrous_footprint(rates).shape == (field, field)
    assert (atrous_footprint(rates) > 0).sum() == (x.grad[0, 0] != 0).sum()


def test_receptive_field_with_strides():
    # VGG-like: two 3 x 3 convolutions, a stride-2 pool (3 x 3), one more convolution.
    assert receptive_field([3, 3, 3, 3], [1, 1, 1, 1], [1, 1, 2, 1]) == 11
    with pytest.raises(ValueError, match="one entry"):
        receptive_field([3, 3], [1])


def test_gridding_of_a_repeated_rate():
    same, mixed = atrous_footprint((2, 2, 2)), atrous_footprint((1, 2, 4))
    assert (same > 0).sum() == 7 * 7  # only every second row and column: 49 of 169 pixels
    assert (mixed > 0).all()  # rates 1, 2, 4 reach every pixel of their 15 x 15 field
    assert same.sum() == mixed.sum() == 9**3  # 27 weights, 9^3 paths either way


# -- Poly learning rate -------------------------------------------------------------------------


def test_poly_matches_its_formula_and_torch():
    assert poly_lr(1e-3, 0, 100) == 1e-3
    assert poly_lr(1e-3, 100, 100) == 0.0
    assert poly_lr(1.0, 50, 100) == pytest.approx(0.5**0.9)
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=2.5e-4)
    sched = torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=20, power=0.9)
    for it in range(20):
        assert opt.param_groups[0]["lr"] == pytest.approx(poly_lr(2.5e-4, it, 20), rel=1e-9)
        opt.step()
        sched.step()
    with pytest.raises(ValueError, match="iteration"):
        poly_lr(1.0, 101, 100)


# -- Fully connected CRF ------------------------------------------------------------------------


def test_crf_kernel_matches_a_double_loop():
    crf = DenseCRF(w1=2.0, w2=0.5, sigma_alpha=1.5, sigma_beta=0.4, sigma_gamma=0.8)
    image = torch.rand(3, 3, 4, dtype=torch.float64)
    K = crf.kernel(image)
    pixels = [(y, x) for y in range(3) for x in range(4)]
    for (i, (yi, xi)), (j, (yj, xj)) in itertools.product(enumerate(pixels), repeat=2):
        d_p = (yi - yj) ** 2 + (xi - xj) ** 2
        d_f = float(((image[:, yi, xi] - image[:, yj, xj]) ** 2).sum())
        expected = 2.0 * math.exp(-d_p / (2 * 1.5**2) - d_f / (2 * 0.4**2))
        expected += 0.5 * math.exp(-d_p / (2 * 0.8**2))
        assert float(K[i, j]) == pytest.approx(0.0 if i == j else expected, rel=1e-9)


def test_parallel_update_matches_the_mean_field_equation():
    torch.manual_seed(0)
    crf = DenseCRF()
    probs, image = torch.rand(3, 3, 3).softmax(0), torch.rand(1, 3, 3)
    K = crf.kernel(image)
    unary = -torch.log(probs.reshape(3, 9).T.double())
    Q0 = torch.softmax(-unary, 1)
    expected = torch.empty_like(Q0)
    for i in range(9):  # Q_i(l) ~ exp(-U_i(l) - sum_{j != i} k_ij sum_{l' != l} Q_j(l'))
        logits = [
            -unary[i, c] - sum(K[i, j] * (1 - Q0[j, c]) for j in range(9) if j != i)
            for c in range(3)
        ]
        expected[i] = torch.softmax(torch.stack(logits), 0)
    result = crf.infer(probs, image, iterations=1)
    torch.testing.assert_close(
        result.marginals.reshape(3, 9).T.double(), expected, atol=1e-6, rtol=0
    )


def test_free_energy_of_a_labelling_is_its_gibbs_energy():
    torch.manual_seed(1)
    crf = DenseCRF()
    image, L = torch.rand(1, 2, 3), 3
    K = crf.kernel(image)
    unary = torch.rand(6, L).double()
    for labels in itertools.islice(itertools.product(range(L), repeat=6), 0, None, 37):
        Q = F.one_hot(torch.tensor(labels), L).double()
        gibbs = sum(unary[i, labels[i]] for i in range(6))
        gibbs += sum(K[i, j] for i in range(6) for j in range(i + 1, 6) if labels[i] != labels[j])
        assert DenseCRF.energy(Q, unary, K) == pytest.approx(float(gibbs))


@pytest.mark.parametrize("seed", range(4))
def test_sequential_mean_field_never_increases_the_energy(seed):
    torch.manual_seed(seed)
    crf = DenseCRF(w1=3.0, w2=1.0, sigma_alpha=2.0, sigma_beta=0.3, sigma_gamma=1.0)
    probs, image = torch.randn(3, 6, 6).mul(2).softmax(0), torch.rand(1, 6, 6)
    energies = crf.infer(probs, image, iterations=6, schedule="sequential").energies
    assert len(energies) == 7
    assert all(b <= a + 1e-9 for a, b in itertools.pairwise(energies))
    assert energies[-1] < energies[0]


def test_crf_without_pairwise_terms_returns_the_network():
    probs = torch.rand(4, 5, 5).softmax(0)
    result = DenseCRF(w1=0.0, w2=0.0).infer(probs, torch.rand(1, 5, 5), iterations=3)
    torch.testing.assert_close(result.marginals, probs, atol=1e-6, rtol=0)
    assert torch.equal(result.labels, probs.argmax(0))
    untouched = DenseCRF().infer(probs, torch.rand(1, 5, 5), iterations=0)
    torch.testing.assert_close(untouched.marginals, probs, atol=1e-6, rtol=0)
    assert len(untouched.energies) == 1


def test_crf_bad_arguments():
    probs = torch.rand(2, 4, 4).softmax(0)
    with pytest.raises(ValueError, match="schedule"):
        DenseCRF().infer(probs, torch.rand(1, 4, 4), schedule="random")
    with pytest.raises(ValueError, match="differ"):
        DenseCRF().infer(probs, torch.rand(1, 5, 4))
    with pytest.raises(ValueError, match="iterations"):
        DenseCRF().infer(probs, torch.rand(1, 4, 4), iterations=-1)


# -- Metrics --------------------------------------------------------------------------------


def test_mean_iou_against_a_loop():
    rng = np.random.default_rng(0)
    target = torch.from_numpy(rng.integers(0, 4, (3, 7, 7)))
    pred = torch.from_numpy(rng.integers(0, 3, (3, 7, 7)))  # never predicts class 3
    miou, ious = mean_iou(pred, target, num_classes=5)  # class 4 is absent from both
    expected = []
    for c in range(4):
        inter = ((pred == c) & (target == c)).sum().item()
        union = ((pred == c) | (target == c)).sum().item()
        expected.append(inter / union)
    assert ious[:4] == pytest.approx(expected) and ious[3] == 0.0 and math.isnan(ious[4])
    assert miou == pytest.approx(sum(expected) / 4)
    assert mean_iou(target, target, 4)[0] == 1.0
    with pytest.raises(ValueError, match="differ"):
        mean_iou(pred[:1], target, 4)


def test_boundary_mask_against_a_loop():
    rng = np.random.default_rng(1)
    masks = torch.from_numpy(rng.integers(0, 3, (2, 6, 7)))
    masks[1] = 2  # one label everywhere: no boundary at all
    for width in (1, 2):
        band = boundary_mask(masks, width)
        assert band.dtype == torch.bool and band.shape == masks.shape
        for n, i, j in itertools.product(range(2), range(6), range(7)):
            window = masks[n, max(i - width, 0) : i + width + 1, max(j - width, 0) : j + width + 1]
            assert band[n, i, j] == (window.unique().numel() > 1)
    assert not boundary_mask(masks)[1].any()
    half = torch.zeros(1, 4, 6, dtype=torch.long)
    half[..., 3:] = 1  # an edge between columns 2 and 3
    assert boundary_mask(half)[0].any(0).nonzero().flatten().tolist() == [2, 3]
    with pytest.raises(ValueError, match="width"):
        boundary_mask(masks, 0)
    with pytest.raises(ValueError, match="masks"):
        boundary_mask(masks[0])
