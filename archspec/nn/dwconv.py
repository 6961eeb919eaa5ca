"""A depthwise k×k convolution over tokens laid back out on their grid (ConvNeXt's token mixer)."""

from __future__ import annotations

import torch
from torch import nn

from archspec.nn.layout import channels_last_weight, grid_to_tokens, tokens_to_grid


class DepthwiseConv(nn.Module):
    """One k×k conv per channel (``groups = dim``), padded to keep the grid; the parameter lives in ``conv``.

    Args:
        dim: channels in and out.
        kernel: the (odd) kernel size; padding ``kernel // 2`` keeps the grid size.
        bias: whether the conv has a bias.
    """

    def __init__(self, dim: int, kernel: int = 7, bias: bool = True) -> None:
        super().__init__()
        # Stored in the layout its gradient comes in (tokens are a channels-last grid).
        self.conv = channels_last_weight(nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim, bias=bias))

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        # Tokens are a channels-last grid in memory, so both conversions are views.
        return grid_to_tokens(self.conv(tokens_to_grid(x, hw)))  # (B, N, C) → (B, C, H, W) → (B, N, C)
