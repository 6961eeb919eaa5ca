"""Mixer ``window_attention``: multi-head self-attention within windows of the token grid, cyclically shifted
or not, with a learned relative-position bias (Swin)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from archspec.components.mixer_attention import heads_of
from archspec.flops import attention_flops
from archspec.nodes import LAYER_INPUT, Node, Shape, Site, layer
from archspec.planning import linear_layer, needs_grid
from archspec.registry import register
from archspec.specbase import MixerSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class WindowAttentionArgs:
    """What ``WindowAttentionSpec.build`` reads from its node."""

    dim: int
    heads: int
    window: tuple[int, int]
    shift: tuple[int, int]
    grid: tuple[int, int]
    qkv_bias: bool
    proj_bias: bool
    rel_pos: bool
    attn_drop: float
    proj_drop: float
    dilated: bool = False


@register
class WindowAttentionSpec(MixerSpec):
    """Each ``window`` × ``window`` window of cells attends within itself. ``shift`` rolls the grid by that
    many cells up and left first (and back after), with a mask between cells the roll brought together;
    Swin alternates blocks without and with a shift of half the window. As in Swin, a grid side no
    larger than the window makes the window that side's length and drops the shift along it, and a
    grid that is not a multiple of the window is padded with zeros. ``rel_pos`` adds a learned bias per
    head for each of the (2·window − 1)² offsets between two cells of a window. Give ``heads`` or
    ``head_dim``; the projections are a fused ``qkv`` Linear laid out [q | k | v] and ``proj``.
    ``partition: grid`` makes each window a ``window`` × ``window`` grid of cells spread evenly over the whole
    (padded) grid instead of a block of neighbours (MaxViT's grid attention); it takes no shift."""

    type: Literal["window_attention"] = "window_attention"
    build_args = WindowAttentionArgs
    colour = "#fbd9b0"
    example: ClassVar[dict[str, Any]] = {"stages.0.mixer.shift": 3}  # an 8×8 grid: padded to 14×14, shifted
    heads: int | None = Field(None, ge=1, le=4096, description="number of heads (default 1, or from head_dim)")
    head_dim: int | None = Field(None, ge=1, le=65_536, description="channels per head, instead of heads")
    window: int = Field(7, ge=1, le=256, description="the window's side, in cells")
    shift: int = Field(0, ge=0, le=255, description="the cyclic shift of the grid, in cells (less than the window)")
    rel_pos: bool = Field(True, description="a learned bias per head for each relative offset within a window")
    partition: Literal["window", "grid"] = Field(
        "window", description="window: blocks of neighbouring cells; grid: cells spread evenly over the grid"
    )
    qkv_bias: bool = True
    proj_bias: bool = True
    attn_drop: float = Field(0.0, ge=0, lt=1, description="dropout on the attention weights")
    proj_drop: float = Field(0.0, ge=0, lt=1, description="dropout after the output projection")

    @model_validator(mode="after")
    def _fits(self) -> WindowAttentionSpec:
        if self.heads is not None and self.head_dim is not None:
            raise ValueError("give 'heads' or 'head_dim', not both")
        if self.shift >= self.window:
            raise ValueError(f"the shift ({self.shift}) must be smaller than the window ({self.window})")
        if self.partition == "grid" and self.shift:
            raise ValueError("a grid partition takes no shift")
        return self

    def plan(self, tokens: Shape, site: Site) -> Node:
        grid = needs_grid(tokens, "window attention")
        dim = tokens.channels
        heads = heads_of(dim, self.heads, self.head_dim)
        # Swin's rule: a side that fits in one window is one window, unshifted.
        wh, ww = window = (min(grid[0], self.window), min(grid[1], self.window))
        shift = (0 if grid[0] <= self.window else self.shift, 0 if grid[1] <= self.window else self.shift)
        count = math.ceil(grid[0] / wh) * math.ceil(grid[1] / ww)
        cells = wh * ww
        windows = Shape.of(count, cells, dim)  # the padded grid, window by window
        bias = self.qkv_bias
        qkv = linear_layer(site, "qkv", windows, 3 * dim, bias, after=(LAYER_INPUT,))
        parts = [qkv]
        sources: tuple[str, ...] = ("qkv",)
        if self.rel_pos:
            offsets = (2 * wh - 1) * (2 * ww - 1)
            detail = f"{offsets} offsets × {heads} heads"
            modules = (site.sub("rel_pos"),)
            # A table of parameters, read by no layer: it feeds the attention directly.
            parts.append(
                layer(site, "rel_pos", "rel_pos", windows, windows, offsets * heads, 0, modules, detail, after=())
            )
            sources += ("rel_pos",)
        shifted = f", shift {shift[0]}×{shift[1]}" if any(shift) else ""
        kind = "dilated windows" if self.partition == "grid" else "windows"
        detail = f"softmax(qkᵀ)v in {count} {kind} of {wh}×{ww}{shifted}, {heads} heads"
        flops = count * attention_flops(cells, cells, dim)
        parts.append(layer(site, "sdpa", "sdpa", windows, windows, 0, flops, detail=detail, after=sources))
        proj = linear_layer(site, "proj", windows, dim, self.proj_bias)
        parts.append(proj)
        return self.node(
            site,
            tokens,
            tokens,
            children=parts,
            dim=dim,
            heads=heads,
            window=window,
            shift=shift,
            grid=grid,
            qkv_bias=bias,
            proj_bias=self.proj_bias,
            rel_pos=self.rel_pos,
            attn_drop=self.attn_drop,
            proj_drop=self.proj_drop,
            dilated=self.partition == "grid",
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn.init import init_trunc_normal
        from archspec.nn.rel_pos import RelativePositionBias
        from archspec.nn.window_attention import WindowAttention

        a = node.args
        rel_pos = RelativePositionBias(a.window[0], a.window[1], a.heads) if a.rel_pos else None
        module = WindowAttention(
            a.dim,
            a.heads,
            a.window,
            a.shift,
            a.grid,
            a.qkv_bias,
            a.proj_bias,
            rel_pos,
            a.attn_drop,
            a.proj_drop,
            a.dilated,
        )
        return init_trunc_normal(module)
