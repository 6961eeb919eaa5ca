"""Mixer ``attention``: multi-head self-attention over all tokens of the stage."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.flops import attention_flops, linear_flops
from archspec.plan import Node, PlanProblem, Shape, Site
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
        n = tokens.dims[0]
        params = 4 * dim * dim + dim + (3 * dim if self.qkv_bias else 0)  # q, kv, proj
        flops = linear_flops(n, dim, 4 * dim) + attention_flops(n, n, dim)
        return self.node(site, tokens, tokens, params, flops, dim=dim, heads=self.heads, qkv_bias=self.qkv_bias)

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn import Attention

        a = node.args
        return Attention(a["dim"], a["heads"], a["qkv_bias"])
