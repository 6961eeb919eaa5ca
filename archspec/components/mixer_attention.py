"""Mixer ``attention``: multi-head self-attention over all tokens, or over a reduced key/value grid (PVT-v2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from archspec.flops import attention_flops
from archspec.nodes import LAYER_INPUT, Node, PlanProblem, Shape, Site, layer
from archspec.planning import child_site, conv_layer, linear_layer, needs_grid, window_out
from archspec.registry import build_node, register
from archspec.slots import Slot, default_component
from archspec.specbase import MixerSpec, NormSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class AttentionArgs:
    """What ``AttentionSpec.build`` reads from its node."""

    dim: int
    heads: int
    qkv_bias: bool
    proj_bias: bool
    qkv: str
    sr_ratio: int
    attn_drop: float
    proj_drop: float
    rel_pos: tuple[int, int] | None
    out: int | None = None


@register
class AttentionSpec(MixerSpec):
    """Give ``heads`` or ``head_dim`` (heads = dim / head_dim). ``qkv: fused`` keeps one ``qkv``
    Linear laid out [q | k | v] (ViT, DeiT); ``split`` has ``q`` and ``kv`` (PVT, SpectFormer).
    ``sr_ratio`` > 1 reduces the keys' and values' grid with a conv of that kernel and stride and a norm.
    ``rel_pos`` adds a learned bias per head for each offset between two cells of the token grid (as
    Swin's window attention does within a window); the table is made for the built grid, so the model
    refuses other input sizes. ``out`` sets the output projection's width (the input's when left out), for a
    block that widens the tokens in its attention branch (CoAtNet's first transformer block of a stage)."""

    type: Literal["attention"] = "attention"
    build_args = AttentionArgs
    colour = "#fbd9b0"
    heads: int | None = Field(None, ge=1, le=4096, description="number of heads (default 1, or from head_dim)")
    head_dim: int | None = Field(None, ge=1, le=65_536, description="channels per head, instead of heads")
    qkv_bias: bool = True
    proj_bias: bool = True
    qkv: Literal["split", "fused"] = "split"
    sr_ratio: int = Field(1, ge=1, le=64, description="spatial reduction of the key/value grid (PVT-v2)")
    sr_norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "layernorm", eps=1e-5))
    attn_drop: float = Field(0.0, ge=0, lt=1, description="dropout on the attention weights")
    proj_drop: float = Field(0.0, ge=0, lt=1, description="dropout after the output projection")
    rel_pos: bool = Field(False, description="a learned bias per head for each relative offset between two cells")
    out: int | None = Field(
        None, ge=1, le=1 << 16, description="the output projection's width; the input's if left out"
    )

    @model_validator(mode="after")
    def _heads_or_head_dim(self) -> AttentionSpec:
        if self.heads is not None and self.head_dim is not None:
            raise ValueError("give 'heads' or 'head_dim', not both")
        return self

    def size_policy(self) -> str | None:
        return "strict" if self.rel_pos else None  # one bias per offset of the built grid

    def plan(self, tokens: Shape, site: Site) -> Node:
        dim = tokens.channels
        heads = heads_of(dim, self.heads, self.head_dim)
        n, bias = tokens.dims[0], self.qkv_bias
        parts: list[Node] = []
        kv_tokens, kv_source = tokens, LAYER_INPUT
        if self.sr_ratio > 1:
            grid = needs_grid(tokens, "spatial reduction")
            reduced = window_out(grid, self.sr_ratio, self.sr_ratio, 0, "sr_ratio", "the spatial reduction")
            sr = conv_layer(site, "sr", tokens.as_grid(), Shape(dim, reduced), self.sr_ratio, self.sr_ratio)
            kv_tokens = Shape(dim, reduced, tokens=True)
            sr_norm = self.sr_norm.plan(kv_tokens, child_site(site, "sr_norm", "norm"))
            parts += [
                _after(sr, (LAYER_INPUT,)),
                _after(sr_norm, ("sr",)),
            ]
            kv_source = "norm"
        m = kv_tokens.dims[0]
        if self.qkv == "fused":
            if self.sr_ratio > 1:
                raise PlanProblem("qkv", "a fused qkv projection cannot read a reduced key/value grid; use qkv: split")
            parts.append(linear_layer(site, "qkv", tokens, 3 * dim, bias, after=(LAYER_INPUT,)))
            sources: tuple[str, ...] = ("qkv",)
        else:
            parts.append(linear_layer(site, "q", tokens, dim, bias, after=(LAYER_INPUT,)))
            parts.append(linear_layer(site, "kv", kv_tokens, 2 * dim, bias, after=(kv_source,)))
            sources = ("q", "kv")
        rel_pos = None
        if self.rel_pos:
            if tokens.grid is None or tokens.prefix:
                raise PlanProblem("rel_pos", "a relative-position bias needs tokens on a grid, without a class token")
            if self.sr_ratio > 1:
                raise PlanProblem("rel_pos", "a relative-position bias needs keys on the queries' grid (sr_ratio 1)")
            rel_pos = tokens.grid
            offsets = (2 * rel_pos[0] - 1) * (2 * rel_pos[1] - 1)
            table = layer(
                site,
                "rel_pos",
                "rel_pos",
                tokens,
                tokens,
                offsets * heads,
                0,
                (site.sub("rel_pos"),),
                f"{offsets} offsets × {heads} heads",
                after=(),  # a table of parameters: it feeds the attention directly
            )
            parts.append(table)
            sources += ("rel_pos",)
        detail = f"softmax(qkᵀ)v, {heads} heads" + (f", {m} keys" if m != n else "")
        parts.append(
            layer(site, "sdpa", "sdpa", tokens, tokens, 0, attention_flops(n, m, dim), detail=detail, after=sources)
        )
        out = dim if self.out is None else self.out
        parts.append(linear_layer(site, "proj", tokens, out, self.proj_bias))
        return self.node(
            site,
            tokens,
            parts[-1].out_shape,
            children=parts,
            dim=dim,
            heads=heads,
            qkv_bias=bias,
            proj_bias=self.proj_bias,
            qkv=self.qkv,
            sr_ratio=self.sr_ratio,
            attn_drop=self.attn_drop,
            proj_drop=self.proj_drop,
            rel_pos=rel_pos,
            out=self.out,
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn import Attention
        from archspec.nn.init import init_fan_out, init_trunc_normal
        from archspec.nn.rel_pos import RelativePositionBias

        a = node.args
        rel_pos = RelativePositionBias(a.rel_pos[0], a.rel_pos[1], a.heads) if a.rel_pos is not None else None
        sr_norm = build_node(node.child("norm")) if a.sr_ratio > 1 else None
        fused = a.qkv == "fused"
        module = Attention(
            a.dim,
            a.heads,
            a.qkv_bias,
            fused,
            a.sr_ratio,
            sr_norm,
            a.attn_drop,
            a.proj_drop,
            a.proj_bias,
            rel_pos,
            a.out,
        )
        return init_fan_out(init_trunc_normal(module))


def heads_of(dim: int, heads: int | None, head_dim: int | None) -> int:
    """The number of heads ``heads`` or ``head_dim`` (one of them, or neither: 1 head) give a width of ``dim``."""
    if head_dim is not None:
        if dim % head_dim:
            raise PlanProblem("head_dim", f"head_dim {head_dim} does not divide the stage's dim {dim}")
        return dim // head_dim
    heads = heads or 1
    if dim % heads:
        raise PlanProblem("heads", f"{heads} heads do not divide the stage's dim {dim}")
    return heads


def _after(node: Node, after: tuple[str, ...]) -> Node:
    from dataclasses import replace

    return replace(node, after=after)
