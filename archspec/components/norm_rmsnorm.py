"""Norm ``rmsnorm``: divide each token by the root mean square of its channels, then a gain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from archspec.nodes import Node, Shape, Site
from archspec.registry import register
from archspec.specbase import NormSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class RMSNormArgs:
    """What ``RMSNormSpec.build`` reads from its node."""

    dim: int
    eps: float
    grid: bool


@register
class RMSNormSpec(NormSpec):
    type: Literal["rmsnorm"] = "rmsnorm"
    build_args = RMSNormArgs

    def plan(self, shape: Shape, site: Site) -> Node:
        dim = shape.channels
        detail = f"RMSNorm, eps {self.eps:g}"
        return self.node(
            site,
            shape,
            shape,
            dim,
            0,
            dim=dim,
            eps=self.eps,
            grid=shape.grid is not None and not shape.tokens,
            detail=detail,
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from torch import nn

        from archspec.nn.norm import RMSNorm2d

        a = node.args
        return (RMSNorm2d if a.grid else nn.RMSNorm)(a.dim, eps=a.eps)
