"""Mixer ``class_attention``: the class token attends to every token; only the class token comes out (CaiT)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from archspec.flops import attention_flops
from archspec.nodes import LAYER_INPUT, Node, PlanProblem, Shape, Site, layer
from archspec.planning import linear_layer
from archspec.registry import register
from archspec.specbase import MixerSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class ClassAttentionArgs:
    """What ``ClassAttentionMixerSpec.build`` reads from its node."""

    dim: int
    heads: int


@register
class ClassAttentionMixerSpec(MixerSpec):
    """The query is the class token's alone; keys and values come from every token, the class token
    included. It reads tokens with one class token in front and returns that one token, so it sits in
    the ``class`` block (``heads`` defaults to dim // 32, as in SpectFormer-H)."""

    type: Literal["class_attention"] = "class_attention"
    build_args = ClassAttentionArgs
    takes_hw: ClassVar[bool] = False
    colour = "#f6cdd3"
    example: ClassVar[dict[str, Any]] = {
        "stem": {"type": "patch", "patch": 4, "cls_token": True},
        "stages": [{"dim": 8, "depth": 1, "mixer": {"type": "class_attention"}, "ffn": {"type": "mlp"},
                    "block": {"type": "class"}}],
        "head": {"type": "token"},
    }  # fmt: skip
    heads: int | None = Field(None, ge=1, le=4096, description="attention heads (default: dim // 32)")

    def plan(self, tokens: Shape, site: Site) -> Node:
        dim, n = tokens.channels, tokens.dims[0]
        if tokens.prefix != 1 or tokens.explicit_dims is not None:
            raise PlanProblem("type", f"class attention reads tokens with one class token in front, got {tokens}")
        heads = self.heads if self.heads is not None else max(1, dim // 32)
        if dim % heads:
            written = "" if self.heads is not None else " (the default, dim // 32)"
            raise PlanProblem("heads", f"{heads} heads{written} do not divide the dim {dim}")
        cls = Shape.of(1, dim)
        parts = [
            linear_layer(site, "kv", tokens, 2 * dim, after=(LAYER_INPUT,), reads="every token"),
            linear_layer(site, "q", cls, dim, after=(LAYER_INPUT,), reads="class token"),
        ]
        detail = f"softmax(qkᵀ)v, {heads} heads, 1 query"
        parts.append(
            layer(site, "sdpa", "sdpa", cls, cls, 0, attention_flops(1, n, dim), detail=detail, after=("q", "kv"))
        )
        parts.append(linear_layer(site, "proj", cls, dim))
        return self.node(site, tokens, cls, children=parts, dim=dim, heads=heads)

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn import ClassAttention
        from archspec.nn.init import init_trunc_normal

        return init_trunc_normal(ClassAttention(node.args.dim, node.args.heads))
