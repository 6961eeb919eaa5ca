"""ConvFormer's token mixer: an inverted separable convolution (MobileNetV2-style)."""

from __future__ import annotations

import torch
from torch import nn

from archspec.nn.layout import channels_last_weight, grid_to_tokens, tokens_to_grid


class SepConv(nn.Module):
    """pwconv1 (widen) → act1 → k×k depthwise conv → act2 → pwconv2 (back to ``dim``).

    The pointwise convs are Linears over the tokens' channels (a 1×1 conv is the same map, and tokens
    are channels-last already); only the depthwise conv needs the grid.

    Args:
        dim: channels in and out.
        hidden: channels of the depthwise conv (``dim × ratio``).
        kernel: the depthwise conv's (odd) kernel; padding ``kernel // 2`` keeps the grid size.
        act1: the activation after pwconv1.
        act2: the activation after the depthwise conv (``nn.Identity`` when None).
        bias: whether the three layers have biases.
    """

    def __init__(
        self,
        dim: int,
        hidden: int,
        kernel: int,
        act1: nn.Module,
        act2: nn.Module | None = None,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.pwconv1 = nn.Linear(dim, hidden, bias=bias)
        self.act1 = act1
        # Stored in the layout its gradient comes in (tokens are a channels-last grid).
        self.dwconv = channels_last_weight(
            nn.Conv2d(hidden, hidden, kernel, padding=kernel // 2, groups=hidden, bias=bias)
        )
        self.act2 = act2 if act2 is not None else nn.Identity()
        self.pwconv2 = nn.Linear(hidden, dim, bias=bias)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:  # x: (B, N, C)
        x = self.act1(self.pwconv1(x))  # (B, N, hidden)
        x = grid_to_tokens(self.dwconv(tokens_to_grid(x, hw)))  # (B, N, hidden), via the (B, hidden, H, W) grid
        return self.pwconv2(self.act2(x))  # (B, N, C)
