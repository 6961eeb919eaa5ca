"""Activation ``star_relu``: s · relu(x)² + b with a learnable scalar s and b (MetaFormer baselines)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.nodes import Node, Shape, Site
from archspec.registry import register
from archspec.specbase import ActSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class StarReluArgs:
    """What ``StarReluSpec.build`` reads from its node."""

    scale: float
    bias: float


@register
class StarReluSpec(ActSpec):
    type: Literal["star_relu"] = "star_relu"
    build_args = StarReluArgs
    scale: float = Field(1.0, ge=-1_000, le=1_000)
    bias: float = Field(0.0, ge=-1_000, le=1_000)

    def plan(self, shape: Shape, site: Site) -> Node:
        return self.node(site, shape, shape, 2, 0, scale=self.scale, bias=self.bias, detail="StarReLU")

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn.act import StarReLU

        return StarReLU(node.args.scale, node.args.bias)
