"""Norm ``affine``: a learnable per-channel scale and shift, with no statistics (ResMLP)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from archspec.nodes import Node, Shape, Site
from archspec.registry import register
from archspec.specbase import NormSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class AffineArgs:
    """What ``AffineSpec.build`` reads from its node."""

    dim: int
    grid: bool


@register
class AffineSpec(NormSpec):
    """``alpha · x + beta`` per channel, starting as the identity; ``eps`` is not used."""

    type: Literal["affine"] = "affine"
    build_args = AffineArgs

    def plan(self, shape: Shape, site: Site) -> Node:
        dim = shape.channels
        grid = shape.grid is not None and not shape.tokens
        return self.node(site, shape, shape, 2 * dim, 0, detail="alpha · x + beta", dim=dim, grid=grid)

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn.norm import Affine

        return Affine(node.args.dim, node.args.grid)
