"""Part ``projection``: ResNet's projection shortcut, a strided 1×1 conv and a norm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from archspec.nodes import Node, PartInput, PlanProblem, Shape, Site, within
from archspec.planning import conv_layer, needs_grid, window_out
from archspec.registry import build_node, register
from archspec.specbase import PartSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class ProjectionPartArgs:
    """What ``ProjectionPartSpec.build`` reads from its node."""

    cin: int
    cout: int
    stride: int


@register
class ProjectionPartSpec(PartSpec):
    """Takes a block's input to its output's width (``out``, the block's width when left out) and grid
    (``stride``), for a shortcut written ``{add: NAME}``; its norm is the block's ``norm``."""

    type: Literal["projection"] = "projection"
    build_args = ProjectionPartArgs
    reads: ClassVar[str] = "grid"
    example: ClassVar[dict[str, Any]] = {
        "stages.0.block": {
            "type": "flow",
            "parts": {"proj": {"type": "projection", "out": 8}, "m": "mixer", "mlp": "ffn"},
            "flow": [["proj"], ["m", "add"], ["mlp", "add"]],
        }
    }
    out: int | None = Field(None, ge=1, le=1 << 16, description="output channels; the block's width when left out")
    stride: int = Field(1, ge=1, le=16)

    def plan(self, given: PartInput) -> Node:
        site, path = given.site, given.site.spec_path
        try:
            grid = needs_grid(given.shape, "a projection shortcut")
        except PlanProblem as problem:
            raise PlanProblem(path, problem.message) from None
        x = given.shape.as_grid()
        cout = self.out if self.out is not None else given.block.dim
        out = Shape(cout, window_out(grid, 1, self.stride, 0, (*path, "stride"), "the projection"))
        conv = conv_layer(site, "conv", x, out, 1, self.stride, bias=False)
        norm_site = Site(given.norm_path, site.sub("norm"))
        norm = within(given.norm_path, given.norm.plan, out, norm_site)
        detail = f"1×1 conv{f'/{self.stride}' if self.stride > 1 else ''} + norm, {x.channels}→{cout}"
        return self.node(
            site, x, out, children=(conv, norm), detail=detail, cin=x.channels, cout=cout, stride=self.stride
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn.init import init_kaiming
        from archspec.nn.projection import Projection

        a = node.args
        return init_kaiming(Projection(a.cin, a.cout, a.stride, build_node(node.child("norm"))))
