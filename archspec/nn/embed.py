"""Embeddings: image or feature grid (B, C, H, W) in, tokens (B, N, C) and grid size out."""

from __future__ import annotations

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from archspec.nn.layout import dense_tokens, grid_to_tokens, known_equal, tokens_to_grid


class DownSamples(nn.Module):
    """A strided projection (usually a conv) and a norm, applied to the tokens it makes or, with
    ``norm_first``, to the grid before it (ConvNeXt and MetaFormer downsample this way)."""

    def __init__(self, proj: nn.Module, norm: nn.Module, norm_first: bool = False) -> None:
        super().__init__()
        self.norm_first = norm_first
        if norm_first:
            self.norm = norm
            self.proj = proj
        else:
            self.proj = proj
            self.norm = norm

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        if self.norm_first:
            x = self.proj(self.norm(x))  # (B, C, H, W)
            return dense_tokens(x), (x.shape[-2], x.shape[-1])
        x = self.proj(x)  # (B, C, H, W)
        height, width = x.shape[-2:]
        return self.norm(dense_tokens(x)), (height, width)


class PatchEmbed(DownSamples):
    """One conv over the image, a norm on its tokens, then an optional class token and position embeddings.

    Args:
        proj: the patch conv.
        norm: the norm of its tokens.
        cls_token: put a learned class token in front of the tokens (``cls_token``, shape (1, 1, C)).
        pos_grid: the token grid the learned position embeddings (``pos_embed``, (1, prefix + H·W, C))
            are made for, or None for none; on another grid the grid part is resized bilinearly.
        pos_drop: dropout after the position embeddings.
        resize: ``"interpolate"`` or ``"strict"``: what to do on a grid of another size.
    """

    def __init__(
        self,
        proj: nn.Module,
        norm: nn.Module,
        cls_token: bool = False,
        pos_grid: tuple[int, int] | None = None,
        pos_drop: float = 0.0,
        resize: str = "interpolate",
    ) -> None:
        super().__init__(proj, norm)
        dim = proj.out_channels if isinstance(proj, nn.Conv2d) else int(getattr(proj, "out_channels"))  # noqa: B009
        self.prefix = int(cls_token)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if cls_token else None
        self.pos_grid = pos_grid
        self.pos_embed = (
            nn.Parameter(torch.empty(1, self.prefix + pos_grid[0] * pos_grid[1], dim)) if pos_grid else None
        )
        self.pos_drop = pos_drop
        self.resize = resize
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Truncated-normal embeddings with std 0.02; the class token starts at zero (DeiT starts it at 1e-6 std)."""
        for param in (self.pos_embed, self.cls_token):
            if param is not None and not param.is_meta:
                nn.init.trunc_normal_(param, std=0.02)

    def no_weight_decay(self) -> set[str]:
        """The class token and position embeddings, where there are any."""
        return {name for name in ("cls_token", "pos_embed") if getattr(self, name) is not None}

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x, hw = super().forward(x)  # (B, N, C)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)  # (B, 1 + N, C)
        if self.pos_embed is not None:
            x = x + self._positions(hw)
        return F.dropout(x, self.pos_drop, self.training), hw

    def _positions(self, hw: tuple[int, int]) -> torch.Tensor:
        assert self.pos_embed is not None and self.pos_grid is not None
        return resized_positions(self.pos_embed, self.prefix, self.pos_grid, hw, self.resize == "strict")


def resized_positions(
    pos_embed: torch.Tensor, prefix: int, built: tuple[int, int], hw: tuple[int, int], strict: bool
) -> torch.Tensor:
    """Position embeddings (``prefix`` class-token rows, then the ``built`` grid's) for an ``hw`` grid,
    resized bicubically as timm does. FX records it as one call (``torch.fx.wrap``): which way it goes
    depends on the grid's size."""
    if known_equal(hw, built):
        return pos_embed
    if strict:
        raise ValueError(
            f"PatchEmbed was built for a {built[0]}×{built[1]} token grid, got {hw[0]}×{hw[1]} (resize='strict')"
        )
    head, cells = pos_embed[:, :prefix], pos_embed[:, prefix:]
    planes = tokens_to_grid(cells, built)  # (1, C, h, w)
    planes = F.interpolate(planes, size=tuple(hw), mode="bicubic", align_corners=False)
    return torch.cat([head, grid_to_tokens(planes)], dim=1)


torch.fx.wrap("resized_positions")


class Stem(nn.Module):
    """A stack of conv layers (``conv``), then an optional strided projection and a norm on the tokens."""

    def __init__(self, conv: nn.Module, proj: nn.Module | None, norm: nn.Module) -> None:
        super().__init__()
        self.conv = conv
        self.proj = proj
        self.norm = norm

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x = self.conv(x)  # (B, C, H, W)
        if self.proj is not None:
            x = self.proj(x)
        height, width = x.shape[-2:]
        return self.norm(grid_to_tokens(x)), (height, width)


class PoolDownsample(nn.Module):
    """Max- or average-pooling, an optional 1×1 conv when the width changes, then a norm."""

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
        return self.norm(dense_tokens(x)), (height, width)


class Passthrough(nn.Module):
    """No downsampling: the grid goes on as tokens, unchanged (ResNet's blocks do their own striding)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        return grid_to_tokens(x), (x.shape[-2], x.shape[-1])
