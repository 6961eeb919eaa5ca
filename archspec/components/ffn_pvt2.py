"""FFN ``pvt2``: fc1 → 3×3 depthwise conv on the token grid → GELU → fc2."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.components._common import hidden_width
from archspec.flops import conv2d_flops, linear_flops
from archspec.plan import Node, Shape, Site
from archspec.registry import register
from archspec.specbase import FfnSpec

if TYPE_CHECKING:
    from torch import nn


@register
class Pvt2FfnSpec(FfnSpec):
    type: Literal["pvt2"] = "pvt2"
    ratio: float = Field(4.0, gt=0, le=64, description="hidden width = dim × ratio")

    def plan(self, tokens: Shape, site: Site) -> Node:
        assert tokens.grid is not None
        dim, n = tokens.channels, tokens.dims[0]
        hidden = hidden_width(dim, self.ratio, "ratio")
        params = 2 * dim * hidden + hidden + dim + 10 * hidden  # fc1, fc2, depthwise 3×3 with bias
        flops = 2 * linear_flops(n, dim, hidden) + conv2d_flops(hidden, hidden, 3, tokens.grid, groups=hidden)
        return self.node(site, tokens, tokens, params, flops, dim=dim, hidden=hidden)

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn import PVT2FFN

        return PVT2FFN(node.args["dim"], node.args["hidden"])
