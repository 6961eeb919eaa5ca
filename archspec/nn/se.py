"""Squeeze-excitation: gate each channel by a function of the whole image's mean."""

from __future__ import annotations

import torch
from torch import nn


class SqueezeExcite(nn.Module):
    """``x · gate(conv_expand(act(conv_reduce(mean(x)))))`` per channel (Hu et al., 2018).

    The two 1×1 convs hold their weights as timm's SE layers do. The module takes tokens (B, N, C),
    whose mean is over the tokens, or a grid (B, C, H, W) when ``grid`` is set.

    Args:
        dim: channels in and out.
        hidden: channels of the squeezed vector.
        act: activation between the two convs.
        gate: the gate (a sigmoid or hard sigmoid).
        grid: whether the input is a (B, C, H, W) grid rather than tokens.
    """

    def __init__(self, dim: int, hidden: int, act: nn.Module, gate: nn.Module, grid: bool = False) -> None:
        super().__init__()
        self.grid = grid
        self.conv_reduce = nn.Conv2d(dim, hidden, 1)
        self.act = act
        self.conv_expand = nn.Conv2d(hidden, dim, 1)
        self.gate = gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C, 1, 1), from a grid or from tokens (B, N, C)
        squeezed = x.mean((2, 3), keepdim=True) if self.grid else x.mean(1)[:, :, None, None]
        weights = self.gate(self.conv_expand(self.act(self.conv_reduce(squeezed))))
        return x * (weights if self.grid else weights.flatten(1)[:, None, :])
