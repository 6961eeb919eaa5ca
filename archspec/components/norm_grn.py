"""Norm ``grn``: global response normalisation (ConvNeXt-V2's norm inside the MLP's hidden layer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from archspec.nodes import Node, Shape, Site
from archspec.registry import register
from archspec.specbase import NormSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class GrnArgs:
    """What ``GrnSpec.build`` reads from its node."""

    dim: int
    eps: float
    grid: bool


@register
class GrnSpec(NormSpec):
    """``x + beta + gamma · x · n`` per channel: ``n`` is the channel's L2 norm over all positions (tokens
    or grid cells) divided by the mean of those norms over the channels, plus ``eps``. gamma and beta
    start at zero, so the layer starts as the identity. A pooled vector counts as one position."""

    type: Literal["grn"] = "grn"
    build_args = GrnArgs

    def plan(self, shape: Shape, site: Site) -> Node:
        dim = shape.channels
        grid = shape.grid is not None and not shape.tokens
        return self.node(
            site, shape, shape, 2 * dim, 0, detail=f"GRN, eps {self.eps:g}", dim=dim, eps=self.eps, grid=grid
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn.grn import GlobalResponseNorm

        a = node.args
        return GlobalResponseNorm(a.dim, a.eps, a.grid)
