"""Activation ``gelu``: the Gaussian error linear unit, exact or with the tanh approximation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from archspec.nodes import Node, Shape, Site
from archspec.registry import register
from archspec.specbase import ActSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class GeluArgs:
    """What ``GeluSpec.build`` reads from its node."""

    approximate: str


@register
class GeluSpec(ActSpec):
    type: Literal["gelu"] = "gelu"
    build_args = GeluArgs
    approximate: Literal["none", "tanh"] = "none"

    def plan(self, shape: Shape, site: Site) -> Node:
        detail = "GELU" + (" (tanh)" if self.approximate == "tanh" else "")
        return self.node(site, shape, shape, 0, 0, approximate=self.approximate, detail=detail)

    @staticmethod
    def build(node: Node) -> nn.Module:
        from torch import nn

        return nn.GELU(approximate=node.args.approximate)
