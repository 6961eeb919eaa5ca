"""Part ``pool_projection``: MaxViT's shortcut, an average pool over stride × stride cells and a 1×1 conv."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from archspec.flops import conv_out, same_out
from archspec.nodes import Node, PartInput, PlanProblem, Shape, layer
from archspec.planning import conv_layer, needs_grid, window_out
from archspec.registry import register
from archspec.specbase import PartSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class PoolProjectionPartArgs:
    """What ``PoolProjectionPartSpec.build`` reads from its node."""

    cin: int
    cout: int
    stride: int
    same: bool
    bias: bool


@register
class PoolProjectionPartSpec(PartSpec):
    """Takes a block's input to its output's grid and width, for a shortcut written ``{add: NAME}``: the mean
    over each ``stride`` × ``stride`` window (none at stride 1), then a 1×1 conv with ``bias`` to ``out``
    channels (the block's width when left out) where the width changes. ``padding: same`` pads an odd
    grid with zeros at the bottom and right (TensorFlow's SAME); ``symmetric`` drops the odd row."""

    type: Literal["pool_projection"] = "pool_projection"
    build_args = PoolProjectionPartArgs
    reads: ClassVar[str] = "grid"
    example: ClassVar[dict[str, Any]] = {
        "stages.0.block": {
            "type": "flow",
            "parts": {"proj": {"type": "pool_projection", "out": 12, "stride": 1}, "m": "mixer", "mlp": "ffn"},
            "flow": [["proj"], ["m", "add"], ["mlp", "add"]],
        }
    }
    out: int | None = Field(None, ge=1, le=1 << 16, description="output channels; the block's width when left out")
    stride: int = Field(2, ge=1, le=16, description="the pool's window and stride")
    padding: Literal["symmetric", "same"] = Field("symmetric", description="same: TensorFlow's SAME padding")
    bias: bool = True

    def plan(self, given: PartInput) -> Node:
        site, path = given.site, given.site.spec_path
        try:
            grid = needs_grid(given.shape, "a pooled shortcut")
        except PlanProblem as problem:
            raise PlanProblem(path, problem.message) from None
        x = given.shape.as_grid()
        cin = x.channels
        cout = self.out if self.out is not None else given.block.dim
        window_out(grid, self.stride, self.stride, 0, (*path, "stride"), "the pool")
        if self.padding == "same":
            pooled = (same_out(grid[0], self.stride), same_out(grid[1], self.stride))
        else:
            pooled = (conv_out(grid[0], self.stride, self.stride, 0), conv_out(grid[1], self.stride, self.stride, 0))
        children = []
        if self.stride > 1:
            detail = f"mean over {self.stride}×{self.stride} cells"
            children.append(layer(site, "pool", "pool", x, Shape(cin, pooled), detail=detail))
        if cin != cout:
            children.append(conv_layer(site, "expand", Shape(cin, pooled), Shape(cout, pooled), 1, bias=self.bias))
        out = Shape(cout, pooled)
        detail = f"avg pool /{self.stride} + 1×1 conv, {cin}→{cout}"
        zero = None if children else 0  # an identity at stride 1 and the same width
        return self.node(
            site,
            x,
            out,
            zero,
            zero,
            children=children,
            detail=detail,
            cin=cin,
            cout=cout,
            stride=self.stride,
            same=self.padding == "same",
            bias=self.bias,
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn.init import init_kaiming
        from archspec.nn.pool_projection import PoolProjection

        a = node.args
        return init_kaiming(PoolProjection(a.cin, a.cout, a.stride, a.same, a.bias))
