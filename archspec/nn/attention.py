"""Multi-head self-attention: separate or fused query and key/value projections, optional spatial reduction."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archspec.nn.layout import grid_to_tokens, known_equal, tokens_to_grid
from archspec.nn.rel_pos import RelativePositionBias


def grid_bias(bias: torch.Tensor, hw: tuple[int, int] | None, built: tuple[int, int]) -> torch.Tensor:
    """The relative-position bias (h, N, N) as a (1, h, N, N) attention mask, refused for a grid other
    than the one it was made for.

    4-D: given a 3-D mask, ``scaled_dot_product_attention`` leaves its fused CPU kernel for the unfused
    product (CoAtNet-0 ran at 0.85 of timm's speed at batch 8 that way). A free function that FX records
    as one call (``torch.fx.wrap``): the grid is a traced value there.
    """
    if hw is None or not known_equal(hw, built):
        raise ValueError(f"the relative-position bias was made for a {built[0]}×{built[1]} token grid, got {hw}")
    return bias[None]


torch.fx.wrap("grid_bias")


class Attention(nn.Module):
    """Self-attention over all tokens, computed by :meth:`attend` (``F.scaled_dot_product_attention``).

    With separate projections (the SpectFormer-H and PVT-v2 layout) ``q`` gives (heads, head_dim)
    per token and ``kv`` gives [k | v], each split the same way; with ``fused`` one ``qkv`` gives
    [q | k | v] (the ViT layout). The scale is head_dim ** -0.5. With ``sr_ratio`` > 1, keys and
    values come from the token grid reduced by ``sr`` (a conv with kernel = stride = sr_ratio) and
    ``norm``. With ``rel_pos``, a learned bias per head for each offset between two cells of the grid
    is added to the logits; it is made for one grid and refuses others.

    Args:
        dim: channels; must be divisible by ``heads``.
        heads: number of attention heads.
        qkv_bias: whether the q, k and v projections have biases.
        fused: one ``qkv`` projection instead of ``q`` and ``kv``.
        sr_ratio: spatial reduction of the key/value grid (1: none).
        sr_norm: the norm after the reduction (needed when ``sr_ratio`` > 1).
        attn_drop: dropout on the attention weights (training only).
        proj_drop: dropout after ``proj`` (training only).
        proj_bias: whether ``proj`` has a bias.
        rel_pos: the relative-position bias over the token grid (None: none).
        out: ``proj``'s output width (None: ``dim``).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        qkv_bias: bool = True,
        fused: bool = False,
        sr_ratio: int = 1,
        sr_norm: nn.Module | None = None,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        proj_bias: bool = True,
        rel_pos: RelativePositionBias | None = None,
        out: int | None = None,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"heads ({heads}) must divide dim ({dim})")
        self.heads = heads
        self.fused = fused
        if fused:
            self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        else:
            self.q = nn.Linear(dim, dim, bias=qkv_bias)
            self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim if out is None else out, bias=proj_bias)
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            if sr_norm is None:
                raise ValueError("spatial reduction needs its norm")
            self.sr = nn.Conv2d(dim, dim, sr_ratio, sr_ratio)
            self.norm = sr_norm
        self.attn_drop = attn_drop
        self.proj_drop = proj_drop
        self.rel_pos = rel_pos

    def forward(self, x: torch.Tensor, hw: tuple[int, int] | None = None) -> torch.Tensor:
        batch, tokens, dim = x.shape
        head_dim = dim // self.heads
        drop = self.attn_drop if self.training else 0.0
        bias = None if self.rel_pos is None else self._bias(hw)  # (1, h, N, N)
        if self.fused:
            # unbind, not indexing: its backward writes the three gradients into one tensor, where
            # each index's backward would fill a zero tensor of the whole size and add them up.
            q, k, v = self.qkv(x).reshape(batch, tokens, 3, self.heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        else:
            q = self.q(x).reshape(batch, tokens, self.heads, head_dim).transpose(1, 2)  # (B, h, N, d)
            source = x
            if self.sr_ratio > 1:
                assert hw is not None
                source = self.norm(grid_to_tokens(self.sr(tokens_to_grid(x, hw))))  # (B, M, C)
            k, v = self.kv(source).reshape(batch, -1, 2, self.heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        x = self.attend(q, k, v, bias, drop)  # (B, h, N, d)
        x = x.transpose(1, 2).reshape(batch, tokens, dim)  # (B, N, C)
        return F.dropout(self.proj(x), self.proj_drop, self.training)

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, drop: float
    ) -> torch.Tensor:
        """softmax(q kᵀ / √d + mask) v per head, with dropout ``drop`` on the weights: (B, h, N, d)."""
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)

    def _bias(self, hw: tuple[int, int] | None) -> torch.Tensor:
        assert self.rel_pos is not None
        return grid_bias(self.rel_pos(), hw, self.rel_pos.size)
