"""ConvNeXt's block: one residual branch through a token mixer, a norm, an MLP and a layer scale."""

from __future__ import annotations

import torch
from torch import nn


class ConvNeXtBlock(nn.Module):
    """``x + drop_path(ls(mlp(norm(m(x)))))``: the norm sits *after* the mixer, and there is no norm or
    activation after the addition.

    Args:
        m: token mixer (a depthwise conv in ConvNeXt), called as ``m(x, hw)``.
        norm: norm of the mixer's output tokens.
        mlp: feed-forward network, called as ``mlp(x, hw)``.
        drop_path: ``DropPath`` or ``nn.Identity``.
        ls: per-channel scale of the branch (ConvNeXt's ``gamma``), or None for none.
    """

    def __init__(
        self, m: nn.Module, norm: nn.Module, mlp: nn.Module, drop_path: nn.Module, ls: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.m = m
        self.norm = norm
        self.mlp = mlp
        self.ls = ls
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:  # (B, N, C)
        branch = self.mlp(self.norm(self.m(x, hw)), hw)
        if self.ls is not None:
            branch = self.ls(branch)
        return x + self.drop_path(branch), hw
