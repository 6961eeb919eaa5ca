"""Norm ``none``: no normalisation (an ``nn.Identity`` keeps the module's place)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from archspec.nodes import Node, Shape, Site
from archspec.registry import register
from archspec.specbase import NormSpec

if TYPE_CHECKING:
    from torch import nn


@register
class NoNormSpec(NormSpec):
    type: Literal["none"] = "none"

    def plan(self, shape: Shape, site: Site) -> Node:
        return self.node(site, shape, shape, 0, 0, detail="identity")

    @staticmethod
    def build(node: Node) -> nn.Module:
        from torch import nn

        return nn.Identity()
