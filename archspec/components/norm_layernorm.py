"""Norm ``layernorm``: normalise each token (each grid cell) over its channels, with a gain and a bias."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from archspec.nodes import Node, Shape, Site
from archspec.registry import register
from archspec.specbase import NormSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class LayerNormArgs:
    """What ``LayerNormSpec.build`` reads from its node."""

    dim: int
    eps: float
    bias: bool
    grid: bool


@register
class LayerNormSpec(NormSpec):
    """``bias: false`` keeps only the gain (the bias-free LayerNorm of MetaFormer v2 models)."""

    type: Literal["layernorm"] = "layernorm"
    build_args = LayerNormArgs
    bias: bool = True
    label: ClassVar[str] = "LayerNorm"

    def plan(self, shape: Shape, site: Site) -> Node:
        dim = shape.channels
        detail = f"{self.label}, eps {self.eps:g}" + ("" if self.bias else ", no bias")
        return self.node(
            site,
            shape,
            shape,
            dim * (1 + self.bias),
            0,
            dim=dim,
            eps=self.eps,
            bias=self.bias,
            grid=shape.grid is not None and not shape.tokens,
            detail=detail,
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from torch import nn

        from archspec.nn.norm import LayerNorm2d

        a = node.args
        layer = LayerNorm2d if a.grid else nn.LayerNorm
        return layer(a.dim, eps=a.eps, bias=a.bias)
