"""Mixer ``attention``: multi-head self-attention over all tokens of the stage."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.components._common import linear_layer
from archspec.flops import attention_flops
from archspec.plan import LAYER_INPUT, Node, PlanProblem, Shape, Site, layer
from archspec.registry import register
from archspec.specbase import MixerSpec

if TYPE_CHECKING:
    from torch import nn


@register
class AttentionSpec(MixerSpec):
    type: Literal["attention"] = "attention"
    heads: int = Field(1, ge=1, le=4096)
    qkv_bias: bool = True

    def plan(self, tokens: Shape, site: Site) -> Node:
        dim = tokens.channels
        if dim % self.heads:
            raise PlanProblem("heads", f"{self.heads} heads do not divide the stage's dim {dim}")
        n, bias = tokens.dims[0], self.qkv_bias
        q = linear_layer(site, "q", tokens, dim, bias, after=(LAYER_INPUT,))
        kv = linear_layer(site, "kv", tokens, 2 * dim, bias, after=(LAYER_INPUT,))
        flops = attention_flops(n, n, dim)
        detail = f"softmax(qkᵀ)v, {self.heads} heads"
        sdpa = layer(site, "sdpa", "sdpa", q.out_shape, tokens, 0, flops, detail=detail, after=("q", "kv"))
        proj = linear_layer(site, "proj", tokens, dim)
        return self.node(site, tokens, tokens, children=(q, kv, sdpa, proj), dim=dim, heads=self.heads, qkv_bias=bias)

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn import Attention

        a = node.args
        return Attention(a["dim"], a["heads"], a["qkv_bias"])
