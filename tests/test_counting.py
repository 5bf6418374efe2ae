"""The shared counters against closed-form counts."""

import pytest
import torch
from torch import nn

from initdocs import count_macs, count_parameters


def test_count_parameters_counts_weights_and_biases():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Linear(8, 2))
    # conv 3*8*9 + 8; BN scale and shift 2*8 (running statistics are buffers); linear 8*2 + 2
    assert count_parameters(model) == 3 * 8 * 9 + 8 + 2 * 8 + 8 * 2 + 2


def test_count_parameters_skips_frozen_and_counts_shared_once():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.ReLU(), shared, nn.Linear(4, 3))
    model[3].weight.requires_grad_(False)
    assert count_parameters(model) == (16 + 4) + 3  # shared layer once, frozen weight skipped


@pytest.mark.parametrize(("groups", "stride"), [(1, 1), (4, 2), (8, 1)])
def test_count_macs_of_convolution_matches_formula(groups, stride):
    conv = nn.Conv2d(8, 16, 3, stride=stride, padding=1, groups=groups)
    x = torch.randn(2, 8, 10, 10)
    out = (10 + 2 - 3) // stride + 1
    expected = 2 * 16 * out * out * (8 // groups) * 9  # batch * C_out * H * W * C_in/g * k^2
    assert count_macs(conv, x) == expected


def test_count_macs_of_linear_and_restores_training_mode():
    model = nn.Sequential(nn.Linear(5, 7), nn.Dropout(0.5))
    model.train()
    assert count_macs(model, torch.randn(3, 5)) == 3 * 5 * 7
    assert model.training
