"""FFN ``mlp``: fc1 → GELU → fc2."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.components._common import hidden_width
from archspec.flops import linear_flops
from archspec.plan import Node, Shape, Site
from archspec.registry import register
from archspec.specbase import FfnSpec

if TYPE_CHECKING:
    from torch import nn


@register
class MlpFfnSpec(FfnSpec):
    type: Literal["mlp"] = "mlp"
    ratio: float = Field(4.0, gt=0, le=64, description="hidden width = dim × ratio")

    def plan(self, tokens: Shape, site: Site) -> Node:
        dim, n = tokens.channels, tokens.dims[0]
        hidden = hidden_width(dim, self.ratio, "ratio")
        params = 2 * dim * hidden + hidden + dim
        return self.node(site, tokens, tokens, params, 2 * linear_flops(n, dim, hidden), dim=dim, hidden=hidden)

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn import FFN

        return FFN(node.args["dim"], node.args["hidden"])
