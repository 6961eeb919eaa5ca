"""CaiT-style class attention: a class token attends to all tokens; the patch tokens stay as they are."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ClassAttention(nn.Module):
    """Attention with the query taken from the class token (position 0) only.

    ``kv`` is registered before ``q`` and lays out [k | v] as in :class:`~archspec.nn.Attention`.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"heads ({heads}) must divide dim ({dim})")
        self.heads = heads
        self.kv = nn.Linear(dim, dim * 2)
        self.q = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1 + N, C) → (B, 1, C)
        batch, tokens, dim = x.shape
        head_dim = dim // self.heads
        kv = self.kv(x).reshape(batch, tokens, 2, self.heads, head_dim).permute(2, 0, 3, 1, 4)  # (2, B, h, 1+N, d)
        k, v = kv.unbind(0)  # unbind's backward fills one gradient tensor; indexing's would fill one per index
        q = self.q(x[:, :1]).reshape(batch, 1, self.heads, head_dim).transpose(1, 2)  # (B, h, 1, d)
        cls = F.scaled_dot_product_attention(q, k, v)  # (B, h, 1, d)
        return self.proj(cls.transpose(1, 2).reshape(batch, 1, dim))
