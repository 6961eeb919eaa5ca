"""Multi-head self-attention with separate query and key/value projections."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archspec.nn.linear import Linear


class Attention(nn.Module):
    """Self-attention over all tokens, computed by ``F.scaled_dot_product_attention``.

    The layout matches SpectFormer-H checkpoints: ``q`` gives (heads, head_dim) per token and ``kv``
    gives [k | v], each split the same way. The scale is head_dim ** -0.5.

    Args:
        dim: channels; must be divisible by ``heads``.
        heads: number of attention heads.
        qkv_bias: whether ``q`` and ``kv`` have biases.
    """

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"heads ({heads}) must divide dim ({dim})")
        self.heads = heads
        self.q = Linear(dim, dim, bias=qkv_bias)
        self.kv = Linear(dim, dim * 2, bias=qkv_bias)
        self.proj = Linear(dim, dim)

    def forward(self, x: torch.Tensor, hw: tuple[int, int] | None = None) -> torch.Tensor:
        batch, tokens, dim = x.shape
        head_dim = dim // self.heads
        q = self.q(x).reshape(batch, tokens, self.heads, head_dim).transpose(1, 2)  # (B, h, N, d)
        kv = self.kv(x).reshape(batch, tokens, 2, self.heads, head_dim).permute(2, 0, 3, 1, 4)  # (2, B, h, N, d)
        x = F.scaled_dot_product_attention(q, kv[0], kv[1])  # (B, h, N, d)
        x = x.transpose(1, 2).reshape(batch, tokens, dim)  # (B, N, C)
        return self.proj(x)
