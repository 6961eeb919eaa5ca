"""The pre-norm residual block with two branches: a token mixer, then a feed-forward network."""

from __future__ import annotations

import torch
from torch import nn


class Block(nn.Module):
    """``x = res1(x) + drop_path(ls1(m(norm1(x))))``, then the same with ``norm2``, ``mlp``, ``ls2``, ``res2``.

    The layer scales (``ls1``, ``ls2``) and residual scales (``res_scale1``, ``res_scale2``) are
    registered only when given, so a block without them prints and saves exactly as before.

    Args:
        m: token mixer, called as ``m(x, hw)``.
        norm1: norm before the mixer.
        norm2: norm before the feed-forward network.
        mlp: feed-forward network, called as ``mlp(x, hw)``.
        drop_path: ``DropPath`` or ``nn.Identity``.
        ls1, ls2: per-channel scales of the two branches, or None.
        res_scale1, res_scale2: per-channel scales of the two shortcuts, or None.
    """

    def __init__(
        self,
        m: nn.Module,
        norm1: nn.Module,
        norm2: nn.Module,
        mlp: nn.Module,
        drop_path: nn.Module,
        ls1: nn.Module | None = None,
        ls2: nn.Module | None = None,
        res_scale1: nn.Module | None = None,
        res_scale2: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.m = m
        self.norm1 = norm1
        self.norm2 = norm2
        self.mlp = mlp
        self.drop_path = drop_path
        self.ls1 = ls1
        self.ls2 = ls2
        self.res_scale1 = res_scale1
        self.res_scale2 = res_scale2

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:  # (B, N, C)
        branch = self.m(self.norm1(x), hw)
        if self.ls1 is not None:
            branch = self.ls1(branch)
        x = (x if self.res_scale1 is None else self.res_scale1(x)) + self.drop_path(branch)
        branch = self.mlp(self.norm2(x), hw)
        if self.ls2 is not None:
            branch = self.ls2(branch)
        x = (x if self.res_scale2 is None else self.res_scale2(x)) + self.drop_path(branch)
        return x, hw
