"""PoolFormer's token mixer: local average pooling, minus the input."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archspec.nn.layout import grid_to_tokens, tokens_to_grid


class PoolMixer(nn.Module):
    """``avg_pool(x) - x`` over a k×k window with stride 1 on the token grid; no parameters.

    The input is subtracted because the block adds it back through its shortcut: without the
    subtraction the branch would count every token twice. Padding cells are left out of each mean
    (``count_include_pad=False``), so border tokens average only over real neighbours.

    Args:
        kernel: the (odd) pooling window; the padding ``kernel // 2`` keeps the grid size.
    """

    def __init__(self, kernel: int = 3) -> None:
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd to keep the grid size, got {kernel}")
        self.kernel = kernel

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}"

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:  # x: (B, N, C)
        grid = tokens_to_grid(x, hw)  # (B, C, H, W), a channels-last view
        pooled = F.avg_pool2d(grid, self.kernel, 1, self.kernel // 2, count_include_pad=False)
        return grid_to_tokens(pooled - grid)  # (B, N, C)
