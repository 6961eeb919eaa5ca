"""Head ``pool``: average the last stage's tokens, apply its norm, then a Linear classifier."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from archspec.flops import linear_flops
from archspec.plan import Node, Shape, Site
from archspec.registry import register
from archspec.specbase import HeadSpec

if TYPE_CHECKING:
    from torch import nn

    from archspec.nn.backbone import Body


@register
class PoolHeadSpec(HeadSpec):
    type: Literal["pool"] = "pool"

    def plan(self, tokens: Shape, num_classes: int, site: Site) -> Node:
        dim = tokens.channels
        params = dim * num_classes + num_classes
        return self.node(
            site,
            tokens,
            Shape(num_classes),
            params,
            linear_flops(1, dim, num_classes),
            dim=dim,
            num_classes=num_classes,
        )

    @staticmethod
    def build_model(node: Node, body: Body) -> nn.Module:
        from torch import nn

        from archspec.nn import PoolModel

        return PoolModel(body, nn.Linear(node.args["dim"], node.args["num_classes"]))
