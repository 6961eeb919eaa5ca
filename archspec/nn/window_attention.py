"""Self-attention within non-overlapping windows of the token grid, optionally cyclically shifted (Swin)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archspec.nn.layout import known_equal
from archspec.nn.rel_pos import RelativePositionBias

MASKED = -100.0
"""What the shift mask adds to the logit of a pair of cells that the shift brought together from
different parts of the grid: enough to make their softmax weight vanish, as Swin does."""


def window_partition(x: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    """(B, H, W, C) with H, W multiples of the window → (B, windows, cells, C), windows row by row."""
    batch, height, width, dim = x.shape
    wh, ww = window
    x = x.view(batch, height // wh, wh, width // ww, ww, dim)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(batch, -1, wh * ww, dim)  # (B, nW, wh·ww, C)


def window_merge(windows: torch.Tensor, window: tuple[int, int], hw: tuple[int, int]) -> torch.Tensor:
    """The inverse of :func:`window_partition`: (B, windows, cells, C) → (B, H, W, C)."""
    batch, _, _, dim = windows.shape
    (wh, ww), (height, width) = window, hw
    x = windows.view(batch, height // wh, width // ww, wh, ww, dim)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(batch, height, width, dim)  # (B, H, W, C)


def grid_partition(x: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    """(B, H, W, C) with H, W multiples of the window → (B, windows, cells, C): window (i, j) holds the cells
    whose position modulo (H / wh, W / ww) is (i, j), a wh × ww grid spread over the whole image (MaxViT)."""
    batch, height, width, dim = x.shape
    wh, ww = window
    x = x.view(batch, wh, height // wh, ww, width // ww, dim)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(batch, -1, wh * ww, dim)  # (B, nW, wh·ww, C)


def grid_merge(windows: torch.Tensor, window: tuple[int, int], hw: tuple[int, int]) -> torch.Tensor:
    """The inverse of :func:`grid_partition`: (B, windows, cells, C) → (B, H, W, C)."""
    batch, _, _, dim = windows.shape
    (wh, ww), (height, width) = window, hw
    x = windows.view(batch, height // wh, width // ww, wh, ww, dim)
    return x.permute(0, 3, 1, 4, 2, 5).reshape(batch, height, width, dim)  # (B, H, W, C)


def shift_mask(
    padded: tuple[int, int], window: tuple[int, int], shift: tuple[int, int], device: torch.device | None = None
) -> torch.Tensor:
    """The additive mask of shifted windows: 0 between cells from the same part of the rolled grid,
    :data:`MASKED` between cells the roll brought together from opposite edges.

    Along an axis of (padded) length L that is shifted by s, the rolled grid has three parts: the
    cells before the last window, the last window's first ``window − s`` cells and its last s cells
    (those that wrapped round). An unshifted axis is one part.

    Returns:
        A (windows, cells, cells) tensor, windows row by row as :func:`window_partition` orders them.
    """

    def parts(length: int, size: int, step: int) -> torch.Tensor:
        cells = torch.arange(length, device=device)
        if step == 0:
            return torch.zeros_like(cells)
        return (cells >= length - size).long() + (cells >= length - step).long()  # 0, 1 or 2

    rows, cols = (parts(*args) for args in zip(padded, window, shift, strict=True))
    label = (rows[:, None] * 3 + cols[None, :]).float()  # (Hp, Wp): which part each cell is in
    cells = window_partition(label[None, :, :, None], window)[0, :, :, 0]  # (nW, wh·ww)
    apart = cells[:, :, None] != cells[:, None, :]  # (nW, N, N)
    return torch.zeros(apart.shape, device=device).masked_fill(apart, MASKED)


def attention_mask(
    bias: torch.Tensor | None,
    built_mask: torch.Tensor | None,
    padded: tuple[int, int],
    built: tuple[int, int] | None,
    window: tuple[int, int],
    shift: tuple[int, int],
    heads: int,
    count: int,
    device: torch.device,
) -> torch.Tensor | None:
    """The (1, windows · heads, N, N) additive mask: the relative-position bias (h, N, N) plus the shift
    mask, the one prepared for the built grid when the padded grid is that one. It is 4-D because
    ``scaled_dot_product_attention`` leaves its fused CPU kernel for the unfused product given a 3-D mask.

    A free function that FX records as one call (``torch.fx.wrap``): which mask it takes depends on
    the grid, a traced value there.
    """
    shifted: torch.Tensor | None = None
    if any(shift):
        reuse = built_mask is not None and built is not None and known_equal(padded, built)
        shifted = built_mask if reuse else shift_mask(padded, window, shift, device)
    if bias is None:
        return None if shifted is None else shifted.repeat_interleave(heads, dim=0)[None]  # (1, nW·h, N, N)
    cells = bias.shape[-1]
    if shifted is None:
        return bias.expand(count, -1, -1, -1).reshape(1, -1, cells, cells)  # (1, nW·h, N, N)
    return (bias[None] + shifted[:, None]).reshape(1, -1, cells, cells)  # (1, nW·h, N, N)


torch.fx.wrap("attention_mask")


class WindowAttention(nn.Module):
    """Multi-head self-attention within each window of the token grid, with a learned bias per
    relative offset inside a window, computed by ``F.scaled_dot_product_attention``.

    The grid is cyclically rolled up and left by ``shift`` cells first (and back afterwards), so that
    alternating blocks see windows straddling the previous ones' borders; a mask keeps cells that
    the roll brought together from attending to each other. A grid that is not a multiple of the
    window is padded with zeros at the bottom and right, and those cells are attended to (as Swin
    does). The projections are a fused ``qkv`` Linear laid out [q | k | v] and ``proj``; the scale
    is head_dim ** -0.5.

    With ``dilated``, a window is not a block of neighbouring cells but a window-sized grid of cells
    spread evenly over the whole (padded) grid (MaxViT's grid attention); it takes no shift.

    Args:
        dim: channels; must be divisible by ``heads``.
        heads: number of attention heads.
        window: the window's (height, width).
        shift: the roll along (height, width); 0 for none on that axis.
        grid: the token grid the shift mask is prepared for (others get theirs on each call).
        qkv_bias: whether ``qkv`` has a bias.
        proj_bias: whether ``proj`` has a bias.
        rel_pos: the relative-position bias (None: none).
        attn_drop: dropout on the attention weights (training only).
        proj_drop: dropout after ``proj`` (training only).
        dilated: windows spread over the grid instead of blocks of neighbours.
    """

    mask: torch.Tensor | None

    def __init__(
        self,
        dim: int,
        heads: int,
        window: tuple[int, int],
        shift: tuple[int, int] = (0, 0),
        grid: tuple[int, int] | None = None,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        rel_pos: RelativePositionBias | None = None,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        dilated: bool = False,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"heads ({heads}) must divide dim ({dim})")
        if any(not 0 <= s < w for s, w in zip(shift, window, strict=True)):
            raise ValueError(f"the shift {shift} must be smaller than the window {window}")
        if dilated and any(shift):
            raise ValueError("dilated windows take no shift")
        self.dilated = dilated
        self.heads = heads
        self.window = window
        self.shift = shift
        self.grid = grid
        self.rel_pos = rel_pos
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        self.attn_drop = attn_drop
        self.proj_drop = proj_drop
        mask = shift_mask(self._padded(self.grid), self.window, self.shift) if grid and any(shift) else None
        self.register_buffer("mask", mask, persistent=False)

    def _padded(self, hw: tuple[int, int] | None) -> tuple[int, int]:
        assert hw is not None
        return (-(-hw[0] // self.window[0]) * self.window[0], -(-hw[1] // self.window[1]) * self.window[1])

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        batch, tokens, dim = x.shape
        height, width = hw
        (wh, ww), (sh, sw) = self.window, self.shift
        x = x.view(batch, height, width, dim)  # (B, H, W, C)
        if sh or sw:
            x = torch.roll(x, shifts=(-sh, -sw), dims=(1, 2))
        padded = self._padded(hw)
        x = F.pad(x, (0, 0, 0, padded[1] - width, 0, padded[0] - height))  # (B, Hp, Wp, C)
        partition, merge = (grid_partition, grid_merge) if self.dilated else (window_partition, window_merge)
        windows = partition(x, self.window)  # (B, nW, N, C)
        count, cells, head_dim = windows.shape[1], wh * ww, dim // self.heads
        # Windows join the heads axis, so that one (windows · heads, N, N) mask serves the whole batch.
        qkv = self.qkv(windows.reshape(batch, count * cells, dim))  # (B, nW·N, 3C)
        qkv = qkv.view(batch, count, cells, 3, self.heads, head_dim)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).reshape(3, batch, count * self.heads, cells, head_dim).unbind(0)
        built = self._padded(self.grid) if self.grid is not None else None
        bias = self.rel_pos() if self.rel_pos is not None else None  # (h, N, N)
        mask = attention_mask(bias, self.mask, padded, built, self.window, self.shift, self.heads, count, x.device)
        drop = self.attn_drop if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)  # (B, nW·h, N, d)
        out = out.view(batch, count, self.heads, cells, head_dim).transpose(2, 3).reshape(batch, count, cells, dim)
        out = self.proj(out.reshape(batch, count * cells, dim)).view(batch, count, cells, dim)
        out = F.dropout(out, self.proj_drop, self.training)  # (B, nW, N, C)
        x = merge(out, self.window, padded)[:, :height, :width]  # (B, H, W, C)
        if sh or sw:
            x = torch.roll(x, shifts=(sh, sw), dims=(1, 2))
        return x.reshape(batch, tokens, dim)  # (B, N, C)

    def extra_repr(self) -> str:
        dilated = ", dilated" if self.dilated else ""
        return f"heads={self.heads}, window={self.window}, shift={self.shift}{dilated}"
