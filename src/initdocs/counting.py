"""Counting what a network costs: trainable parameters and multiply-accumulates.

Every chapter checks a model against the numbers its paper prints, so these two counters
are shared by all of them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from initdocs.train import evaluating

__all__ = ["count_macs", "count_parameters"]


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters (``requires_grad``), each shared tensor counted once.

    This is the number papers report: batch-norm scales and shifts count, batch-norm
    running statistics (buffers) do not.
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def count_macs(module: nn.Module, *inputs: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass on ``inputs``.

    Counts the products of convolutions, linear layers and matrix multiplications (one MAC is
    one multiplication plus one addition, so MACs = FLOPs / 2 in PyTorch's counter). Pooling,
    normalization, activations and element-wise additions are not counted; papers that say
    "FLOPs" for what is really this number (Xception, ResNet, SE) follow the same convention.

    The module is run in evaluation mode under ``torch.no_grad()`` and put back in the mode it
    was in. Pass a batch of one to get the cost per image.
    """
    with evaluating(module), FlopCounterMode(display=False) as counter:
        module(*inputs)
    return counter.get_total_flops() // 2
