"""Activation ``squared_relu``: relu(x)², without parameters (MetaFormer's MlpHead)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from archspec.nodes import Node, Shape, Site
from archspec.registry import register
from archspec.specbase import ActSpec

if TYPE_CHECKING:
    from torch import nn


@register
class SquaredReluSpec(ActSpec):
    type: Literal["squared_relu"] = "squared_relu"

    def plan(self, shape: Shape, site: Site) -> Node:
        return self.node(site, shape, shape, 0, 0, detail="SquaredReLU")

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn.squared_relu import SquaredReLU

        return SquaredReLU()
