"""Part ``conv``: a k×k convolution over the token grid, without bias and He-initialised (ResNet's)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from archspec.flops import same_out
from archspec.nodes import Node, PartInput, PlanProblem, Shape
from archspec.planning import conv_layer, needs_grid, window_out
from archspec.registry import register
from archspec.specbase import PartSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class ConvPartArgs:
    """What ``ConvPartSpec.build`` reads from its node."""

    cin: int
    cout: int
    kernel: int
    stride: int
    groups: int
    bias: bool
    padding: str = "symmetric"


@register
class ConvPartSpec(PartSpec):
    """``out`` channels (the block's width when left out), a ``kernel``×``kernel`` window padded to keep the
    grid, ``stride`` and ``groups``. It reads the tokens as their grid and gives a grid to the parts after it."""

    type: Literal["conv"] = "conv"
    build_args = ConvPartArgs
    reads: ClassVar[str] = "grid"
    example: ClassVar[dict[str, Any]] = {
        "stages.0.block": {
            "type": "flow",
            "parts": {"conv": {"type": "conv", "groups": 2}, "bn": {"type": "norm", "norm": "batchnorm"}, "mlp": "ffn"},
            "flow": [["conv", "bn"], ["mlp", "add"]],
        },
    }
    out: int | None = Field(None, ge=1, le=1 << 16, description="output channels; the block's width when left out")
    kernel: int = Field(3, ge=1, le=31)
    stride: int = Field(1, ge=1, le=16)
    groups: int = Field(1, ge=1, le=1 << 16, description="channel groups (the input and output widths' divisor)")
    bias: bool = False
    padding: Literal["symmetric", "same"] = Field(
        "symmetric", description="symmetric: kernel // 2 on every side; same: TensorFlow's SAME padding"
    )

    def plan(self, given: PartInput) -> Node:
        path = given.site.spec_path
        try:
            grid = needs_grid(given.shape, "a conv part")
        except PlanProblem as problem:
            raise PlanProblem(path, problem.message) from None
        cin = given.shape.channels
        cout = self.out if self.out is not None else given.block.dim
        if cin % self.groups or cout % self.groups:
            raise PlanProblem((*path, "groups"), f"{self.groups} groups do not divide {cin} → {cout} channels")
        out_grid = window_out(grid, self.kernel, self.stride, self.kernel // 2, (*path, "stride"), "the conv")
        if self.padding == "same":
            out_grid = (same_out(grid[0], self.stride), same_out(grid[1], self.stride))
        x, out = given.shape.as_grid(), Shape(cout, out_grid)
        conv = conv_layer(
            given.site, "conv", x, out, self.kernel, self.stride, self.bias, given.site.module_path, self.groups
        )
        return self.node(
            given.site,
            x,
            out,
            conv.params,
            conv.flops,
            cin=cin,
            cout=cout,
            kernel=self.kernel,
            stride=self.stride,
            groups=self.groups,
            bias=self.bias,
            padding=self.padding,
            detail=conv.detail,
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from torch import nn

        from archspec.nn.init import init_kaiming

        a = node.args
        if a.padding == "same" and (a.stride > 1 or a.kernel % 2 == 0):
            from archspec.nn.same_pad import SameConv2d

            return SameConv2d(a.cin, a.cout, a.kernel, a.stride, a.groups, a.bias)
        # With stride 1 and an odd kernel, SAME padding is kernel // 2 on every side.
        conv = nn.Conv2d(a.cin, a.cout, a.kernel, a.stride, a.kernel // 2, groups=a.groups, bias=a.bias)
        return init_kaiming(conv)
