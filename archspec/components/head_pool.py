"""Head ``pool``: average the last stage's tokens, apply its norm, then a Linear classifier."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from archspec.components._common import linear_layer
from archspec.plan import Node, Shape, Site, layer
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
        pool = layer(site, "pool", "pool", tokens, Shape(dim), detail="mean over tokens")
        head = linear_layer(site, "head", pool.out_shape, num_classes, module="head", reads="pooled")
        return self.node(site, tokens, head.out_shape, children=(pool, head), dim=dim, num_classes=num_classes)

    @staticmethod
    def build_model(node: Node, body: Body) -> nn.Module:
        from torch import nn

        from archspec.nn import PoolModel

        return PoolModel(body, nn.Linear(node.args["dim"], node.args["num_classes"]))
