"""The squared ReLU activation (MetaFormer's classifier head)."""

from __future__ import annotations

import torch
from torch import nn


class SquaredReLU(nn.Module):
    """``relu(x)²``, without parameters (StarReLU without its scale and bias)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x).square()
