"""Activations torch does not have."""

from __future__ import annotations

import torch
from torch import nn


class StarReLU(nn.Module):
    """``scale · relu(x)² + bias`` with a learnable scalar scale and bias (MetaFormer baselines)."""

    def __init__(self, scale: float = 1.0, bias: float = 0.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((1,), scale))
        self.bias = nn.Parameter(torch.full((1,), bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.relu(x).square() + self.bias
