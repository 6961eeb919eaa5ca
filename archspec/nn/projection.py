"""ResNet's projection shortcut: the part a block's form adds its branch to where the block changes
width or grid (the blocks themselves are forms: :mod:`archspec.components.block_basic`)."""

from __future__ import annotations

import torch
from torch import nn


class Projection(nn.Module):
    """The shortcut of a block that changes width or grid: a strided 1×1 conv without bias, then a norm.

    Args:
        cin: channels in.
        cout: channels out.
        stride: the conv's stride (the block's).
        norm: the norm of the conv's output grid.
    """

    def __init__(self, cin: int, cout: int, stride: int, norm: nn.Module) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, stride, bias=False)
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        return self.norm(self.conv(x))
