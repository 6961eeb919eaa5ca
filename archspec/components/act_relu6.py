"""Activation ``relu6``: min(max(x, 0), 6) (MobileNetV2)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from archspec.nodes import Node, Shape, Site
from archspec.registry import register
from archspec.specbase import ActSpec

if TYPE_CHECKING:
    from torch import nn


@register
class Relu6Spec(ActSpec):
    type: Literal["relu6"] = "relu6"

    def plan(self, shape: Shape, site: Site) -> Node:
        return self.node(site, shape, shape, 0, 0, detail="ReLU6")

    @staticmethod
    def build(node: Node) -> nn.Module:
        from torch import nn

        return nn.ReLU6(inplace=True)
