"""Activation ``relu``: max(x, 0)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from archspec.nodes import Node, Shape, Site
from archspec.registry import register
from archspec.specbase import ActSpec

if TYPE_CHECKING:
    from torch import nn


@register
class ReluSpec(ActSpec):
    type: Literal["relu"] = "relu"

    def plan(self, shape: Shape, site: Site) -> Node:
        return self.node(site, shape, shape, 0, 0, detail="ReLU")

    @staticmethod
    def build(node: Node) -> nn.Module:
        from torch import nn

        return nn.ReLU(inplace=True)
