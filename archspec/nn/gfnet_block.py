"""The GFNet block: one residual branch that runs the global filter and the FFN in series."""

from __future__ import annotations

import torch
from torch import nn


class GFNetBlock(nn.Module):
    """``x = x + drop_path(ls(mlp(norm2(m(norm1(x))))))``.

    Unlike a pre-norm transformer block there is no shortcut around the token mixer: the filter's
    output is normalised and fed straight to the FFN, and the block adds its input back only once.
    GFNet-H scales that single branch by a learnable per-channel vector (``ls``, its ``gamma``).

    Args:
        m: token mixer (the global filter), called as ``m(x, hw)``.
        norm1: norm before the mixer.
        norm2: norm between the mixer and the feed-forward network.
        mlp: feed-forward network, called as ``mlp(x, hw)``.
        drop_path: ``DropPath`` or ``nn.Identity``, on the branch.
        ls: per-channel scale of the branch, or None for none.
    """

    def __init__(
        self,
        norm1: nn.Module,
        m: nn.Module,
        norm2: nn.Module,
        mlp: nn.Module,
        drop_path: nn.Module,
        ls: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.norm1 = norm1
        self.m = m
        self.norm2 = norm2
        self.mlp = mlp
        self.drop_path = drop_path
        self.ls = ls

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:  # (B, N, C)
        branch = self.mlp(self.norm2(self.m(self.norm1(x), hw)), hw)
        if self.ls is not None:
            branch = self.ls(branch)
        return x + self.drop_path(branch), hw
