"""Activation ``hard_swish``: x · relu6(x + 3) / 6, a piecewise-linear swish (MobileNetV3)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from archspec.nodes import Node, Shape, Site
from archspec.registry import register
from archspec.specbase import ActSpec

if TYPE_CHECKING:
    from torch import nn


@register
class HardSwishSpec(ActSpec):
    type: Literal["hard_swish"] = "hard_swish"

    def plan(self, shape: Shape, site: Site) -> Node:
        return self.node(site, shape, shape, 0, 0, detail="Hardswish")

    @staticmethod
    def build(node: Node) -> nn.Module:
        from torch import nn

        return nn.Hardswish()
