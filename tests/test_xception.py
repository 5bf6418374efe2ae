"""Xception against the paper (Table 3, Fig. 5) and against torch's own convolution."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from initdocs import count_macs, count_parameters
from initdocs.xception import (
    SeparableConv2d,
    Xception,
    XceptionBlock,
    XceptionConfig,
    tiny_xception,
    widest_within,
    xception,
)


@pytest.fixture(scope="module")
def model() -> Xception:
    return xception(num_classes=1000)


def test_parameter_count_matches_table_3(model):
    assert count_parameters(model) == 22_855_952


def test_36_convolution_layers_in_14_modules(model):
    separable = sum(isinstance(m, SeparableConv2d) for m in model.modules())
    stem = sum(isinstance(m, nn.Conv2d) for m in model.entry_flow[:6])
    blocks = [m for m in model.modules() if isinstance(m, XceptionBlock)]
    assert (stem, separable) == (2, 34)
    # 12 residual modules, plus the stem and the tail of the exit flow: 14 modules.
    assert len(blocks) == 12
    strided = [b for b in blocks if not isinstance(b.shortcut, nn.Identity)]
    assert [b.shortcut[0].out_channels for b in strided] == [128, 256, 728, 1024]


def test_feature_map_and_logits_shape(model):
    x = torch.randn(2, 3, 299, 299)
    features = model.forward_features(x)
    assert features.shape == (2, 2048, 10, 10)
    model.eval()
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (2, 1000)
    assert torch.isfinite(logits).all()


def test_macs_agree_with_a_hand_count(model):
    """Counter total equals the sum of per-layer closed forms, collected with hooks."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += output.numel() * (module.in_channels // module.groups) * k
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    x = torch.randn(1, 3, 299, 299)
    try:
        macs = count_macs(model, x)
    finally:
        for h in handles:
            h.remove()
    assert macs == total


@pytest.mark.parametrize(("c_in", "c_out", "k"), [(3, 8, 3), (16, 32, 3), (8, 4, 5)])
def test_separable_equals_regular_conv_with_factorized_kernel(c_in, c_out, k):
    torch.manual_seed(0)
    sep = SeparableConv2d(c_in, c_out, k, padding=k // 2)
    x = torch.randn(2, c_in, 12, 12)
    W = sep.pointwise.weight[:, :, 0, 0, None, None] * sep.depthwise.weight[:, 0][None]
    expected = F.conv2d(x, W, padding=k // 2)
    torch.testing.assert_close(sep(x), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sep.equivalent_kernel(), W)


def test_equivalent_kernel_refuses_a_mid_activation():
    sep = SeparableConv2d(4, 4, mid_activation=nn.ReLU())
    with pytest.raises(ValueError, match="nonlinearity"):
        sep.equivalent_kernel()


@pytest.mark.parametrize("c_out", [1, 8, 64, 728])
def test_parameter_ratio_formula(c_out):
    c_in, k = 32, 3
    ratio = count_parameters(SeparableConv2d(c_in, c_out, k)) / count_parameters(
        nn.Conv2d(c_in, c_out, k, bias=False)
    )
    assert ratio == pytest.approx(1 / c_out + 1 / k**2)


@pytest.mark.parametrize("separable", [True, False])
@pytest.mark.parametrize("width", [2, 8])
def test_tiny_xception_on_digit_sized_input(width, separable):
    net = tiny_xception(width=width, separable=separable)
    out = net(torch.randn(4, 1, 8, 8))
    assert out.shape == (4, 10)
    assert torch.isfinite(out).all()
    kinds = {type(m) for m in net.modules()}
    assert (SeparableConv2d in kinds) is separable


def test_regular_variant_has_many_more_parameters():
    sep, reg = tiny_xception(16, True), tiny_xception(16, False)
    assert count_parameters(reg) > 6 * count_parameters(sep)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="stride"):
        XceptionBlock(4, (4,), stride=3)
    with pytest.raises(ValueError, match="width"):
        tiny_xception(width=0)
    with pytest.raises(ValueError, match="at least one"):
        XceptionBlock(4, ())


def test_config_defaults_are_the_paper():
    cfg = XceptionConfig()
    assert cfg.entry_channels == (128, 256, 728)
    assert cfg.middle_repeats == 8
    assert cfg.tail_channels == (1536, 2048)


@pytest.mark.parametrize("regular_width", [2, 3, 6])
def test_widest_within_fits_the_budget_and_is_widest(regular_width):
    budget = count_parameters(tiny_xception(regular_width, separable=False))
    width = widest_within(budget)
    assert count_parameters(tiny_xception(width)) <= budget
    assert count_parameters(tiny_xception(width + 1)) > budget
    assert width > regular_width  # separable layers are cheaper at the same width


def test_widest_within_refuses_a_budget_too_small():
    with pytest.raises(ValueError, match="no tiny_xception"):
        widest_within(10)
