"""Swin's downsample: each 2×2 neighbourhood of cells becomes one token, normalised and projected."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchMerging(nn.Module):
    """Concatenate the channels of each 2×2 neighbourhood of a (B, C, H, W) grid, then ``norm`` over the
    4·C values and ``reduction`` (a Linear) to the next stage's width.

    The four cells go in the order (top, left), (bottom, left), (top, right), (bottom, right): column
    by column, as Swin's checkpoints expect. A grid with an odd side is padded with zeros to even first.

    Args:
        norm: the norm over 4·C channels.
        reduction: the projection from 4·C channels.
    """

    def __init__(self, norm: nn.Module, reduction: nn.Module) -> None:
        super().__init__()
        self.norm = norm
        self.reduction = reduction

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        batch, dim, height, width = x.shape
        x = x.permute(0, 2, 3, 1)  # (B, H, W, C)
        x = F.pad(x, (0, 0, 0, width % 2, 0, height % 2))
        height, width = x.shape[1] // 2, x.shape[2] // 2
        x = x.reshape(batch, height, 2, width, 2, dim)  # (B, H/2, dy, W/2, dx, C)
        x = x.permute(0, 1, 3, 4, 2, 5).reshape(batch, height * width, 4 * dim)  # (B, N, [dx, dy, C])
        return self.reduction(self.norm(x)), (height, width)
