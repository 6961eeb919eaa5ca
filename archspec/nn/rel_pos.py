"""A learned bias per head for each relative offset between two cells of a grid (Swin's attention bias)."""

from __future__ import annotations

import torch
from torch import nn


def relative_position_index(height: int, width: int) -> torch.Tensor:
    """For every pair (i, j) of cells of a height × width grid, the row of their offset in a table of
    (2·height − 1)·(2·width − 1) offsets: ``(dy + height − 1) · (2·width − 1) + (dx + width − 1)``,
    with (dy, dx) the position of i minus that of j. Cells are numbered row by row.

    Returns:
        A (height·width, height·width) long tensor.
    """
    rows = torch.arange(height).repeat_interleave(width)  # (N,): the row of each cell
    cols = torch.arange(width).repeat(height)  # (N,)
    dy = rows[:, None] - rows[None, :]  # (N, N)
    dx = cols[:, None] - cols[None, :]  # (N, N)
    return (dy + height - 1) * (2 * width - 1) + (dx + width - 1)


class RelativePositionBias(nn.Module):
    """One learned value per head for each offset between two cells of a height × width grid.

    Calling it gives the (heads, N, N) bias that attention adds to its logits, N = height · width. The
    table is the only parameter; the index into it is derived from the sizes, so it is a buffer that
    the state_dict leaves out.

    Args:
        height: the grid's (or window's) height.
        width: its width.
        heads: number of attention heads.
    """

    index: torch.Tensor

    def __init__(self, height: int, width: int, heads: int) -> None:
        super().__init__()
        self.size = (height, width)
        self.table = nn.Parameter(torch.empty((2 * height - 1) * (2 * width - 1), heads))
        self.register_buffer("index", relative_position_index(height, width), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Truncated-normal values with std 0.02, as Swin starts them."""
        if not self.table.is_meta:
            nn.init.trunc_normal_(self.table, std=0.02)

    def no_weight_decay(self) -> set[str]:
        """The table is a bias, trained without weight decay (as Swin's)."""
        return {"table"}

    def forward(self) -> torch.Tensor:
        cells = self.size[0] * self.size[1]
        bias = self.table[self.index.view(-1)].view(cells, cells, -1)  # (N, N, heads)
        return bias.permute(2, 0, 1)  # (heads, N, N)

    def extra_repr(self) -> str:
        return f"{self.size[0]}×{self.size[1]}, heads={self.table.shape[1]}"
