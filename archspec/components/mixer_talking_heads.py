"""Mixer ``talking_heads``: self-attention whose heads are mixed before and after the softmax (CaiT)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.flops import attention_flops
from archspec.nodes import LAYER_INPUT, Node, PlanProblem, Shape, Site, layer
from archspec.planning import linear_layer
from archspec.registry import register
from archspec.specbase import MixerSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class TalkingHeadsArgs:
    """What ``TalkingHeadsSpec.build`` reads from its node."""

    dim: int
    heads: int
    qkv_bias: bool
    attn_drop: float
    proj_drop: float


@register
class TalkingHeadsSpec(MixerSpec):
    """Attention over all tokens with one fused ``qkv`` Linear ([q | k | v]); ``proj_l`` (heads → heads)
    mixes the heads' logits before the softmax and ``proj_w`` their weights after it."""

    type: Literal["talking_heads"] = "talking_heads"
    build_args = TalkingHeadsArgs
    colour = "#f9cfa0"
    heads: int = Field(1, ge=1, le=4096, description="number of heads")
    qkv_bias: bool = True
    attn_drop: float = Field(0.0, ge=0, lt=1, description="dropout on the mixed attention weights")
    proj_drop: float = Field(0.0, ge=0, lt=1, description="dropout after the output projection")

    def plan(self, tokens: Shape, site: Site) -> Node:
        dim, heads, n = tokens.channels, self.heads, tokens.dims[0]
        if dim % heads:
            raise PlanProblem("heads", f"{heads} heads do not divide the stage's dim {dim}")
        pairs = Shape.of(n, n, heads)  # the logits with the head axis last, as the head-mixing Linears read them
        parts = [
            linear_layer(site, "qkv", tokens, 3 * dim, self.qkv_bias, after=(LAYER_INPUT,)),
            layer(site, "matmul", "logits", tokens, pairs, 0, attention_flops(n, n, dim) // 2, detail="qkᵀ"),
            linear_layer(site, "proj_l", pairs, heads, reads="logits"),
            linear_layer(site, "proj_w", pairs, heads, reads="softmax"),
            layer(
                site,
                "matmul",
                "mix",
                pairs,
                tokens,
                0,
                attention_flops(n, n, dim) // 2,
                detail="weights · v",
                after=("proj_w", "qkv"),
            ),
            linear_layer(site, "proj", tokens, dim),
        ]
        return self.node(
            site,
            tokens,
            tokens,
            children=parts,
            dim=dim,
            heads=heads,
            qkv_bias=self.qkv_bias,
            attn_drop=self.attn_drop,
            proj_drop=self.proj_drop,
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn.init import init_trunc_normal
        from archspec.nn.talking_heads import TalkingHeadsAttention

        a = node.args
        return init_trunc_normal(TalkingHeadsAttention(a.dim, a.heads, a.qkv_bias, a.attn_drop, a.proj_drop))
