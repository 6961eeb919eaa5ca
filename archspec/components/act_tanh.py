"""Activation ``tanh``: the hyperbolic tangent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from archspec.nodes import Node, Shape, Site
from archspec.registry import register
from archspec.specbase import ActSpec

if TYPE_CHECKING:
    from torch import nn


@register
class TanhSpec(ActSpec):
    type: Literal["tanh"] = "tanh"

    def plan(self, shape: Shape, site: Site) -> Node:
        return self.node(site, shape, shape, 0, 0, detail="Tanh")

    @staticmethod
    def build(node: Node) -> nn.Module:
        from torch import nn

        return nn.Tanh()
