"""Norms for both layouts: tokens (B, N, C) and grids (B, C, H, W).

A norm over channels is the same function in either layout; these modules let one normalise the
layout it is given without a copy, and keep the state_dict of the torch layer they extend.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) grid (channels-first, as in ConvNeXt)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)  # (B, H, W, C): free when the grid is channels-last in memory
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)  # (B, C, H, W)


class RMSNorm2d(nn.RMSNorm):
    """RMSNorm over the channels of a (B, C, H, W) grid."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # via (B, H, W, C)


class TokenBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the channels of tokens (B, N, C), with the statistics of BatchNorm2d on their grid;
    a pooled (B, C) vector is normalised as it is."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, N, C) goes through (B, C, N); a (B, C) vector is left as it is: no branch on the rank, so FX traces it.
        return super().forward(x.movedim(-1, 1)).movedim(1, -1)

    def _check_input_dim(self, input: torch.Tensor) -> None:
        # BatchNorm1d's own check branches on the rank, which FX cannot trace; the plan fixes the rank here.
        pass


class GroupNorm(nn.GroupNorm):
    """GroupNorm with an optional bias (``bias=False`` keeps only the per-channel gain)."""

    def __init__(self, groups: int, channels: int, eps: float = 1e-5, bias: bool = True) -> None:
        super().__init__(groups, channels, eps)
        if not bias:
            self.bias = None  # type: ignore[assignment]

    def extra_repr(self) -> str:
        shown = super().extra_repr()  # newer torch releases name the missing bias themselves
        return shown + ("" if self.bias is not None or "bias=" in shown else ", bias=False")


class TokenGroupNorm(GroupNorm):
    """GroupNorm of tokens (B, N, C): each group's statistics span its channels and every token; a
    pooled (B, C) vector is normalised as it is."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, N, C) is seen as a (B, C, 1, N) grid that is channels-last in memory, where torch's CPU
        # kernel reads and writes it in place of a copy to (B, C, N) and back: the tokens come out
        # contiguous, and the pooling or conv after them stays on its channels-last path. A (B, C)
        # vector goes through (B, C, 1). No branch on the rank, so FX traces it.
        return super().forward(x.unsqueeze(1).movedim(-1, 1)).movedim(1, -1).squeeze(1)


class Affine(nn.Module):
    """``alpha · x + beta`` per channel, with no statistics (ResMLP's norm); starts as the identity.

    ``alpha`` and ``beta`` have shape (1, 1, C) as in ResMLP and act on the last axis (tokens
    (B, N, C), a pooled (B, C)); with ``grid`` set the input is (B, C, H, W) and they act on axis 1.
    """

    def __init__(self, dim: int, grid: bool = False) -> None:
        super().__init__()
        self.grid = grid
        self.alpha = nn.Parameter(torch.ones(1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, dim))

    def no_weight_decay(self) -> set[str]:
        """A norm's gain and shift: trained without weight decay, though stored (1, 1, C)."""
        return {"alpha", "beta"}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.grid:
            return torch.addcmul(self.beta.view(1, -1, 1, 1), self.alpha.view(1, -1, 1, 1), x)
        return torch.addcmul(self.beta.flatten(), self.alpha.flatten(), x)  # over the last axis, any rank
