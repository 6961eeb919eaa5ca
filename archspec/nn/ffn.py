"""Feed-forward networks: the plain two-layer MLP and PVT-v2's variant with a depthwise conv."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archspec.nn.layout import channels_last_weight, grid_to_tokens, tokens_to_grid


class FFN(nn.Module):
    """fc1 → act → dropout (→ norm) → fc2 → dropout.

    Args:
        dim: channels in and out.
        hidden: channels between the two Linears.
        act: the activation module (GELU when None).
        bias: whether the Linears have biases.
        drop: dropout probability after the activation and after fc2 (applied in training only).
        norm: a norm of the hidden tokens before fc2 (ConvNeXt-V2's GRN), or None.
    """

    def __init__(
        self,
        dim: int,
        hidden: int,
        act: nn.Module | None = None,
        bias: bool = True,
        drop: float = 0.0,
        norm: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden, bias=bias)
        self.act = act if act is not None else nn.GELU()
        self.norm = norm
        self.fc2 = nn.Linear(hidden, dim, bias=bias)
        self.drop = drop

    def extra_repr(self) -> str:
        return f"drop={self.drop}" if self.drop else ""

    def forward(self, x: torch.Tensor, hw: tuple[int, int] | None = None) -> torch.Tensor:
        x = F.dropout(self.act(self.fc1(x)), self.drop, self.training)
        if self.norm is not None:
            x = self.norm(x)
        return F.dropout(self.fc2(x), self.drop, self.training)


class DWConv(nn.Module):
    """A 3×3 depthwise conv applied to tokens laid back out on their grid."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        # Stored in the layout its gradient comes in (tokens are a channels-last grid).
        self.dwconv = channels_last_weight(nn.Conv2d(dim, dim, 3, padding=1, groups=dim))

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        return grid_to_tokens(self.dwconv(tokens_to_grid(x, hw)))


class PVT2FFN(nn.Module):
    """fc1 → 3×3 depthwise conv → act → dropout → fc2 → dropout (PVT-v2): an MLP with some local context.

    Args as for :class:`FFN`, and ``se``: a squeeze-excitation of the hidden tokens before fc2, or None.
    """

    def __init__(
        self,
        dim: int,
        hidden: int,
        act: nn.Module | None = None,
        bias: bool = True,
        drop: float = 0.0,
        se: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden, bias=bias)
        self.dwconv = DWConv(hidden)
        self.act = act if act is not None else nn.GELU()
        self.se = se
        self.fc2 = nn.Linear(hidden, dim, bias=bias)
        self.drop = drop

    def extra_repr(self) -> str:
        return f"drop={self.drop}" if self.drop else ""

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        x = self.fc1(x)
        x = self.act(self.dwconv(x, hw))
        if self.se is not None:
            x = self.se(x)
        x = F.dropout(x, self.drop, self.training)
        return F.dropout(self.fc2(x), self.drop, self.training)
