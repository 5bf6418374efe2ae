"""Squeeze-and-Excitation against its equations (Eqs. 2-5), the paper's tables and closed forms.

Equation and table numbers are those of the journal version (TPAMI 2020, arXiv:1709.01507 v4).
"""

import pytest
import torch
from torch import nn

from initdocs import count_macs, count_parameters
from initdocs.resnet import BasicBlock, Bottleneck, resnet50, resnet_cifar
from initdocs.se import (
    BAR_GLYPHS,
    CUE_GLYPHS,
    SEBlock,
    cue_bar_images,
    extra_parameters,
    one_stage_resnet,
    se_blocks,
    se_resnet50,
    se_resnet_cifar,
    stride_on_first_1x1,
)

N_S = (3, 4, 6, 3)  # ResNet-50's blocks per stage (Table 1)
C_S = (256, 512, 1024, 2048)  # their output channels
RESNET50 = 25_557_032  # torchvision.models.resnet50()


def direct_se(u, w1, b1, w2, b2):
    """Eqs. 2-4 written out with loops over channels, independent of the module's code."""
    _, C, H, W = u.shape
    z = torch.stack([u[:, c].sum(dim=(1, 2)) / (H * W) for c in range(C)], dim=1)  # Eq. 2
    hidden = torch.clamp(z @ w1.T + b1, min=0.0)  # delta(W_1 z)
    s = 1.0 / (1.0 + torch.exp(-(hidden @ w2.T + b2)))  # Eq. 3
    out = torch.stack([s[:, c, None, None] * u[:, c] for c in range(C)], dim=1)  # Eq. 4
    return out, s


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(("C", "r", "H", "W"), [(16, 4, 5, 7), (64, 16, 3, 3), (8, 1, 1, 1)])
def test_se_block_equals_equations_2_to_4(C, r, H, W, bias):
    torch.manual_seed(0)
    block = SEBlock(C, r, bias=bias)
    u = torch.randn(3, C, H, W)
    zeros = torch.zeros(C // r), torch.zeros(C)
    b1 = block.fc1.bias if bias else zeros[0]
    b2 = block.fc2.bias if bias else zeros[1]
    expected, s = direct_se(u, block.fc1.weight, b1, block.fc2.weight, b2)
    out = block(u)
    assert out.shape == u.shape
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(block.gates, s)
    assert block.gates.shape == (3, C) and not block.gates.requires_grad


def test_gates_lie_strictly_between_0_and_1():
    torch.manual_seed(0)
    block = SEBlock(32, 8)
    block(torch.randn(16, 32, 4, 4) * 3)
    assert ((block.gates > 0) & (block.gates < 1)).all()


@pytest.mark.parametrize(("C", "r"), [(256, 16), (2048, 16), (64, 4)])
def test_block_parameters_are_2C2_over_r_plus_biases(C, r):
    assert count_parameters(SEBlock(C, r, bias=False)) == 2 * C * C // r
    assert count_parameters(SEBlock(C, r)) == 2 * C * C // r + C // r + C


def test_se_resnet50_parameter_count():
    # timm's legacy_seresnet50 (the released SE-ResNet-50 with biases): 28,088,024;
    # Tables 10, 13 and 16 print it rounded, 28.1M.
    model = se_resnet50()
    assert count_parameters(resnet50()) == RESNET50
    assert count_parameters(model) == 28_088_024
    assert round(count_parameters(model) / 1e6, 1) == 28.1


def test_se_resnet50_layout_matches_table_1():
    blocks = se_blocks(se_resnet50())
    assert len(blocks) == sum(N_S) == 16
    expected = [c for n, c in zip(N_S, C_S, strict=True) for _ in range(n)]
    assert [b.channels for b in blocks] == expected
    # Table 1 lists "fc, [16, 256]" ... "fc, [128, 2048]": C/16 hidden units, C outputs.
    assert sorted({(b.fc1.out_features, b.fc2.out_features) for b in blocks}) == [
        (16, 256),
        (32, 512),
        (64, 1024),
        (128, 2048),
    ]


def test_equation_5_by_hand():
    # (2/16) * (3*256^2 + 4*512^2 + 6*1024^2 + 3*2048^2) = 2,514,944; biases 16,048.
    assert extra_parameters(N_S, C_S, 16, bias=False) == 2_514_944
    assert extra_parameters(N_S, C_S, 16) == 2_514_944 + 16_048


@pytest.mark.parametrize(
    ("r", "total"),
    [(2, 45_699_240), (4, 35_635_688), (8, 30_603_912), (16, 28_088_024), (32, 26_830_080)],
)
def test_overhead_formula_equals_measured_difference(r, total):
    """Eq. 5 plus biases, computed inline, against the counted models (timm's counts)."""
    formula = sum(n * (2 * c * c // r + c // r + c) for n, c in zip(N_S, C_S, strict=True))
    measured = count_parameters(se_resnet50(reduction=r)) - RESNET50
    assert measured == formula == extra_parameters(N_S, C_S, r)
    assert RESNET50 + measured == total
    no_bias = count_parameters(se_resnet50(reduction=r, bias=False)) - RESNET50
    assert no_bias == 2 * sum(n * c * c for n, c in zip(N_S, C_S, strict=True)) // r


def test_table_10_rounding_matches_at_r_2_and_16_only():
    # Table 10 prints 45.7M, 35.7M, 30.7M, 28.1M, 26.9M; our counts, with or without
    # biases, round to 45.7, 35.6, 30.6, 28.1, 26.8 (the paper does not say how it counted).
    paper = {2: 45.7, 4: 35.7, 8: 30.7, 16: 28.1, 32: 26.9}
    for r, value in paper.items():
        ours = {
            round((RESNET50 + extra_parameters(N_S, C_S, r, bias)) / 1e6, 1)
            for bias in (True, False)
        }
        assert (ours == {value}) == (r in (2, 16))


def test_multiply_adds_at_224():
    x = torch.zeros(1, 3, 224, 224)
    # Stride on the 3 x 3 (torchvision's "v1.5"): 4,089,184,256 MACs; SE adds 2C^2/r per
    # block, one MAC per weight of its two linear layers.
    assert count_macs(se_resnet50(), x) == 4_089_184_256 + 2_514_944
    # Stride on the first 1 x 1 (the Caffe models the paper times): 3.86 G (Sec. 4, Table 2).
    caffe = stride_on_first_1x1(resnet50())
    macs = count_macs(caffe, x)
    assert macs == 3_857_973_248  # timm's legacy_seresnet50 with the SE blocks removed
    assert round(macs / 1e9, 2) == 3.86


def test_stride_move_keeps_parameters_and_shapes():
    model = stride_on_first_1x1(se_resnet50())
    assert count_parameters(model) == 28_088_024
    strided = [b for b in model.modules() if isinstance(b, Bottleneck) and b.conv1.stride != (1, 1)]
    assert len(strided) == 3 and all(b.conv2.stride == (1, 1) for b in strided)
    assert model.forward_features(torch.zeros(1, 3, 64, 64)).shape == (1, 2048, 2, 2)
    with pytest.raises(ValueError, match="bottleneck"):
        stride_on_first_1x1(resnet_cifar(20))


def test_se_sits_on_the_residual_branch_before_the_addition():
    """Fig. 3: gates of 1 give the plain block back; gates of 0 leave relu(shortcut)."""
    torch.manual_seed(0)
    plain = Bottleneck(64, 16).eval()
    gated = Bottleneck(64, 16, attention=lambda c: SEBlock(c, 16)).eval()
    gated.load_state_dict(plain.state_dict(), strict=False)
    x = torch.randn(2, 64, 6, 6)
    with torch.no_grad():
        nn.init.zeros_(gated.attention.fc2.weight)
        nn.init.constant_(gated.attention.fc2.bias, 100.0)  # sigmoid(100) == 1 in float32
        torch.testing.assert_close(gated(x), plain(x))
        nn.init.constant_(gated.attention.fc2.bias, -200.0)  # sigmoid(-200) == 0
        torch.testing.assert_close(gated(x), torch.relu(x))


def test_reduction_must_divide_channels():
    with pytest.raises(ValueError, match="must divide"):
        SEBlock(24, 16)
    with pytest.raises(ValueError, match="must divide"):
        se_resnet_cifar(20, reduction=32)  # 16 channels in the first stage
    with pytest.raises(ValueError, match="positive"):
        SEBlock(16, 0)
    with pytest.raises(ValueError, match="one N_s per C_s"):
        extra_parameters((3, 4), (256,))
    with pytest.raises(ValueError, match=r"\(B, 16, H, W\)"):
        SEBlock(16, 4)(torch.zeros(2, 8, 3, 3))


@pytest.mark.parametrize(("depth", "in_channels", "size"), [(8, 1, 8), (20, 3, 32)])
def test_se_resnet_cifar_forward_is_finite(depth, in_channels, size):
    torch.manual_seed(0)
    model = se_resnet_cifar(depth, in_channels=in_channels)
    out = model(torch.randn(2, in_channels, size, size))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert len(se_blocks(model)) == (depth - 2) // 2
    extra = count_parameters(model) - count_parameters(resnet_cifar(depth, in_channels=in_channels))
    n = (depth - 2) // 6
    assert extra == extra_parameters((n, n, n), (16, 32, 64), 4)


def test_se_resnet50_forward_on_a_small_image_is_finite():
    torch.manual_seed(0)
    model = se_resnet50(num_classes=7).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 7) and torch.isfinite(out).all()
    assert all(b.gates.shape == (1, b.channels) for b in se_blocks(model))


def test_one_stage_resnet_sees_7x7_windows():
    torch.manual_seed(0)
    model = one_stage_resnet(reduction=None).eval()
    assert sum(isinstance(m, BasicBlock) for m in model.modules()) == 1
    x = torch.randn(1, 1, 12, 12, requires_grad=True)
    model.forward_features(x)[0, :, 6, 6].sum().backward()
    rows, cols = torch.nonzero(x.grad[0, 0], as_tuple=True)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (3, 9, 3, 9)


def strips(cue, bar, noise_image):
    """A noise image with the given cue at rows 2-4, columns 1-3, and bar at columns 12-14."""
    x = noise_image.clone()
    x[0, 0, 2:5, 1:4] += CUE_GLYPHS[cue]
    x[0, 0, 2:5, 12:15] += BAR_GLYPHS[bar]
    return x


def test_without_se_the_logits_are_additive_in_cue_and_bar():
    """No 7 x 7 window touches both glyphs, so f(P,H) + f(X,V) == f(P,V) + f(X,H)."""
    torch.manual_seed(0)
    noise = 0.1 * torch.randn(1, 1, 8, 16)
    for reduction, additive in ((None, True), (4, False)):
        model = one_stage_resnet(reduction=reduction).eval()
        if reduction is not None:
            nn.init.normal_(model.stages[0][0].attention.fc1.weight, std=3.0)
        with torch.no_grad():
            f = {(c, b): model(strips(c, b, noise))[0] for c in (0, 1) for b in (0, 1)}
        interaction = f[0, 0] + f[1, 1] - f[0, 1] - f[1, 0]
        assert bool(interaction.abs().max() < 1e-5) is additive


def test_cue_bar_images():
    x, y, glyphs = cue_bar_images(400, seed=3, noise=0.0)
    assert x.shape == (400, 1, 8, 16) and y.shape == (400,)
    assert torch.equal(y, (glyphs[:, 0] == glyphs[:, 1]).long())
    assert 0.4 < y.float().mean() < 0.6
    ink = x[:, 0].abs().sum(dim=1) > 0  # (n, W): columns with a glyph
    assert not ink[:, 5:11].any()  # cue in columns 0-4, bar in 11-15: 7 columns apart
    x2, y2, _ = cue_bar_images(400, seed=3, noise=0.0)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert cue_bar_images(0)[0].shape == (0, 1, 8, 16)
    with pytest.raises(ValueError, match="width >= 16"):
        cue_bar_images(4, width=12)
