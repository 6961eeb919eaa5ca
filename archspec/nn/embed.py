"""Embeddings: image or feature grid (B, C, H, W) in, normalised tokens (B, N, C) and grid size out."""

from __future__ import annotations

import torch
from torch import nn

from archspec.nn.layout import grid_to_tokens


class DownSamples(nn.Module):
    """A strided projection (usually a conv) followed by a LayerNorm on the resulting tokens."""

    def __init__(self, proj: nn.Module, norm: nn.Module) -> None:
        super().__init__()
        self.proj = proj
        self.norm = norm

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x = self.proj(x)  # (B, C, H, W)
        height, width = x.shape[-2:]
        return self.norm(grid_to_tokens(x)), (height, width)


class PatchEmbed(DownSamples):
    """Non-overlapping patches: one conv with kernel = stride = patch size, then a LayerNorm."""


class Stem(DownSamples):
    """A stack of conv layers (``conv``), then the strided projection and norm of :class:`DownSamples`."""

    def __init__(self, conv: nn.Module, proj: nn.Module, norm: nn.Module) -> None:
        nn.Module.__init__(self)  # registers conv before proj, as the attribute order reads
        self.conv = conv
        self.proj = proj
        self.norm = norm

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        return super().forward(self.conv(x))


class PoolDownsample(nn.Module):
    """Max- or average-pooling, an optional 1×1 conv when the width changes, then a LayerNorm."""

    def __init__(self, pool: nn.Module, proj: nn.Module | None, norm: nn.Module) -> None:
        super().__init__()
        self.pool = pool
        self.proj = proj
        self.norm = norm

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x = self.pool(x)  # (B, C, H, W)
        if self.proj is not None:
            x = self.proj(x)
        height, width = x.shape[-2:]
        return self.norm(grid_to_tokens(x)), (height, width)
