"""FFN ``pvt2``: fc1 → 3×3 depthwise conv on the token grid → GELU → fc2."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.components._common import conv_layer, hidden_width, linear_layer
from archspec.plan import Node, Shape, Site, layer
from archspec.registry import register
from archspec.specbase import FfnSpec

if TYPE_CHECKING:
    from torch import nn


@register
class Pvt2FfnSpec(FfnSpec):
    type: Literal["pvt2"] = "pvt2"
    ratio: float = Field(4.0, gt=0, le=64, description="hidden width = dim × ratio")

    def plan(self, tokens: Shape, site: Site) -> Node:
        dim = tokens.channels
        hidden = hidden_width(dim, self.ratio, "ratio")
        fc1 = linear_layer(site, "fc1", tokens, hidden)
        wide = fc1.out_shape  # the hidden tokens, laid out on their grid for the depthwise conv
        detail = f"Conv2d 3×3 depthwise, {hidden}"
        dwconv = conv_layer(site, "dwconv", wide, wide, 3, groups=hidden, detail=detail)
        act = layer(site, "act", "act", wide, wide, modules=(site.sub("act"),), detail="GELU")
        fc2 = linear_layer(site, "fc2", wide, dim)
        return self.node(site, tokens, tokens, children=(fc1, dwconv, act, fc2), dim=dim, hidden=hidden)

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn import PVT2FFN

        return PVT2FFN(node.args["dim"], node.args["hidden"])
