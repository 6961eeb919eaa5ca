"""Talking-heads attention (Shazeer et al.; CaiT's self-attention): the heads' logits and weights are mixed."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TalkingHeadsAttention(nn.Module):
    """Multi-head self-attention whose heads exchange information twice: ``proj_l`` mixes the heads'
    logits before the softmax and ``proj_w`` the heads' weights after it, each a Linear over the head
    axis applied at every (query, key) pair. The attention matrix is therefore made explicitly, not
    by a fused kernel.

    Args:
        dim: channels; must be divisible by ``heads``.
        heads: number of attention heads.
        qkv_bias: whether the fused ``qkv`` projection (laid out [q | k | v]) has a bias.
        attn_drop: dropout on the mixed attention weights (training only).
        proj_drop: dropout after ``proj`` (training only).
    """

    def __init__(
        self, dim: int, heads: int, qkv_bias: bool = True, attn_drop: float = 0.0, proj_drop: float = 0.0
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"heads ({heads}) must divide dim ({dim})")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_l = nn.Linear(heads, heads)
        self.proj_w = nn.Linear(heads, heads)
        self.attn_drop = attn_drop
        self.proj_drop = proj_drop

    def forward(self, x: torch.Tensor, hw: tuple[int, int] | None = None) -> torch.Tensor:  # x: (B, N, C)
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(x).reshape(batch, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        logits = (q * self.scale) @ k.transpose(-2, -1)  # (B, h, N, N)
        # The head axis goes last for the Linears that mix it, and back to second after.
        logits = self.proj_l(logits.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # (B, h, N, N)
        weights = self.proj_w(logits.softmax(dim=-1).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # (B, h, N, N)
        weights = F.dropout(weights, self.attn_drop, self.training)
        x = (weights @ v).transpose(1, 2).reshape(batch, tokens, dim)  # (B, N, C)
        return F.dropout(self.proj(x), self.proj_drop, self.training)
