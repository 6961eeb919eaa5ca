"""Downsample ``none``: the next stage starts on the same grid and width (its first block may stride, as in ResNet)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from archspec.nodes import Node, Shape, Site
from archspec.registry import register
from archspec.specbase import DownsampleSpec

if TYPE_CHECKING:
    from torch import nn


@register
class NoDownsampleSpec(DownsampleSpec):
    type: Literal["none"] = "none"
    example: ClassVar[dict[str, Any]] = {"stages.1.dim": 8}  # the next stage keeps the width

    def plan(self, grid: Shape, dim: int, site: Site) -> Node:
        return self.node(site, grid, grid.as_tokens(), 0, 0)

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn.embed import Passthrough

        return Passthrough()
