"""Activation ``hard_sigmoid``: relu6(x + 3) / 6, a piecewise-linear sigmoid (MobileNetV3's gates)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from archspec.nodes import Node, Shape, Site
from archspec.registry import register
from archspec.specbase import ActSpec

if TYPE_CHECKING:
    from torch import nn


@register
class HardSigmoidSpec(ActSpec):
    type: Literal["hard_sigmoid"] = "hard_sigmoid"

    def plan(self, shape: Shape, site: Site) -> Node:
        return self.node(site, shape, shape, 0, 0, detail="Hardsigmoid")

    @staticmethod
    def build(node: Node) -> nn.Module:
        from torch import nn

        return nn.Hardsigmoid()
