"""The pre-norm residual block shared by every stage."""

from __future__ import annotations

import torch
from torch import nn


class Block(nn.Module):
    """``x + drop_path(m(norm1(x)))``, then ``x + drop_path(mlp(norm2(x)))``.

    Args:
        m: token mixer, called as ``m(x, hw)``.
        norm1: norm before the mixer.
        norm2: norm before the feed-forward network.
        mlp: feed-forward network, called as ``mlp(x, hw)``.
        drop_path: ``DropPath`` or ``nn.Identity``.
    """

    def __init__(self, m: nn.Module, norm1: nn.Module, norm2: nn.Module, mlp: nn.Module, drop_path: nn.Module) -> None:
        super().__init__()
        self.m = m
        self.norm1 = norm1
        self.norm2 = norm2
        self.mlp = mlp
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:  # x: (B, N, C)
        x = x + self.drop_path(self.m(self.norm1(x), hw))
        return x + self.drop_path(self.mlp(self.norm2(x), hw))
