"""The shared ResNet against the counts of torchvision's models and the papers."""

import pytest
import torch
from torch import nn

from initdocs import count_macs, count_parameters
from initdocs.resnet import (
    BasicBlock,
    Bottleneck,
    DropPath,
    ResNet,
    ResNetConfig,
    ShortcutA,
    resnet50,
    resnet101,
    resnet_cifar,
)


def test_imagenet_parameter_counts_match_torchvision():
    # torchvision.models.resnet50() / resnet101(): 25,557,032 and 44,549,160 parameters
    assert count_parameters(resnet50()) == 25_557_032
    assert count_parameters(resnet101()) == 44_549_160


def test_resnet50_multiply_adds_with_stride_on_the_3x3():
    # 4.09 GMACs at 224 x 224 for the "v1.5" layout (3.86 G with the stride on the 1 x 1)
    assert count_macs(resnet50(), torch.zeros(1, 3, 224, 224)) == 4_089_184_256


@pytest.mark.parametrize(("depth", "params"), [(20, 269_722), (56, 853_018), (110, 1_727_962)])
def test_cifar_resnets(depth, params):
    model = resnet_cifar(depth)
    assert count_parameters(model) == params
    assert sum(isinstance(m, BasicBlock) for m in model.modules()) == (depth - 2) // 2
    assert not any(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in model.modules())
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_cifar_resnet56_macs_follow_the_fpgm_accounting_plus_the_classifier():
    # FPGM's authors count 125,485,056 for ResNet-56 without the 64 x 10 classifier
    assert count_macs(resnet_cifar(56), torch.zeros(1, 3, 32, 32)) == 125_485_056 + 640


def test_output_stride_8_with_dilation_as_in_deeplab():
    model = resnet101(replace_stride_with_dilation=(False, True, True))
    features = model.forward_features(torch.zeros(1, 3, 321, 321))
    assert features.shape == (1, 2048, 41, 41)
    stage3, stage4 = model.stages[2], model.stages[3]
    assert [b.conv2.dilation[0] for b in stage3][:2] == [1, 2]  # torchvision's convention
    assert [b.conv2.dilation[0] for b in stage4] == [2, 4, 4]
    assert count_parameters(model) == 44_549_160  # dilation adds no parameters


def test_shortcut_a_subsamples_and_pads_with_zeros():
    x = torch.randn(2, 16, 8, 8)
    out = ShortcutA(16, 32, 2)(x)
    assert out.shape == (2, 32, 4, 4)
    torch.testing.assert_close(out[:, 8:24], x[:, :, ::2, ::2])
    assert out[:, :8].abs().sum() == 0 and out[:, 24:].abs().sum() == 0


def test_attention_hook_acts_on_the_branch_before_the_addition():
    class Zero(nn.Module):
        def forward(self, x):
            return torch.zeros_like(x)

    block = Bottleneck(256, 64, attention=lambda channels: Zero()).eval()
    x = torch.randn(2, 256, 8, 8)
    torch.testing.assert_close(block(x), torch.relu(x))  # branch silenced: relu(identity)
    seen = []
    ResNet(ResNetConfig(attention=lambda c: seen.append(c) or nn.Identity()))
    assert seen == [256] * 3 + [512] * 4 + [1024] * 6 + [2048] * 3


def test_drop_path_keeps_the_expectation_and_rises_linearly():
    drop = DropPath(0.25).train()
    x = torch.ones(20000, 1)
    torch.manual_seed(0)
    out = drop(x)
    assert all(v == 0.0 or v == pytest.approx(1 / 0.75) for v in out.unique().tolist())
    assert out.mean().item() == pytest.approx(1.0, abs=0.02)
    assert torch.equal(drop.eval()(x), x)
    model = resnet50(drop_path_rate=0.05)
    rates = [m.p for m in model.modules() if isinstance(m, DropPath)]
    assert len(rates) == 16
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.05)
    assert rates[1] == pytest.approx(0.05 / 15)


def test_bad_configurations_are_refused():
    with pytest.raises(ValueError, match="6n"):
        resnet_cifar(51)
    with pytest.raises(ValueError, match="block"):
        ResNet(ResNetConfig(block="dense"))
    with pytest.raises(ValueError, match="drop-path"):
        DropPath(1.0)
