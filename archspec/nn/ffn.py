"""Feed-forward networks: the plain two-layer MLP and PVT-v2's variant with a depthwise conv."""

from __future__ import annotations

import torch
from torch import nn

from archspec.nn.layout import grid_to_tokens, tokens_to_grid
from archspec.nn.linear import Linear


class FFN(nn.Module):
    """fc1 → GELU → fc2."""

    def __init__(self, dim: int, hidden: int, act_layer: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.fc1 = Linear(dim, hidden)
        self.act = act_layer()
        self.fc2 = Linear(hidden, dim)

    def forward(self, x: torch.Tensor, hw: tuple[int, int] | None = None) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DWConv(nn.Module):
    """A 3×3 depthwise conv applied to tokens laid back out on their grid."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        return grid_to_tokens(self.dwconv(tokens_to_grid(x, hw)))


class PVT2FFN(nn.Module):
    """fc1 → 3×3 depthwise conv → GELU → fc2 (PVT-v2), which gives the MLP some local context."""

    def __init__(self, dim: int, hidden: int, act_layer: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.fc1 = Linear(dim, hidden)
        self.dwconv = DWConv(hidden)
        self.act = act_layer()
        self.fc2 = Linear(hidden, dim)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        return self.fc2(self.act(self.dwconv(self.fc1(x), hw)))
