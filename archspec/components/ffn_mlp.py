"""FFN ``mlp``: fc1 → GELU → fc2."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.components._common import hidden_width, linear_layer
from archspec.plan import Node, Shape, Site, layer
from archspec.registry import register
from archspec.specbase import FfnSpec

if TYPE_CHECKING:
    from torch import nn


@register
class MlpFfnSpec(FfnSpec):
    type: Literal["mlp"] = "mlp"
    ratio: float = Field(4.0, gt=0, le=64, description="hidden width = dim × ratio")

    def plan(self, tokens: Shape, site: Site) -> Node:
        dim = tokens.channels
        hidden = hidden_width(dim, self.ratio, "ratio")
        fc1 = linear_layer(site, "fc1", tokens, hidden)
        act = layer(site, "act", "act", fc1.out_shape, fc1.out_shape, modules=(site.sub("act"),), detail="GELU")
        fc2 = linear_layer(site, "fc2", act.out_shape, dim)
        return self.node(site, tokens, tokens, children=(fc1, act, fc2), dim=dim, hidden=hidden)

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn import FFN

        return FFN(node.args["dim"], node.args["hidden"])
