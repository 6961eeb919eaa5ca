"""Block ``bottleneck``: ResNet's 1×1 → 3×3 → 1×1 conv-norm layers around a shortcut (ResNet-50 and up)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.components._blocks import drop_path
from archspec.components._common import hidden_width
from archspec.components._resnet import ResNetBlockSpec, at_block, initialise, shortcut_module
from archspec.plan import BlockInput, Node, Shape, Step
from archspec.registry import build_node, register

if TYPE_CHECKING:
    from torch import nn


@register
class BottleneckBlockSpec(ResNetBlockSpec):
    """A 1×1 conv narrows to ``dim × ratio`` channels, a 3×3 conv (strided in the stage's first block,
    as in ResNet v1.5) mixes them, and a 1×1 conv widens back to the stage's ``dim``; each is followed
    by a norm, the first two by an activation, and the last activation comes after the addition."""

    type: Literal["bottleneck"] = "bottleneck"
    ratio: float = Field(0.25, gt=0, le=64, description="inner width / output width (timm: 1 / expansion 4)")

    def plan(self, given: BlockInput) -> Node:
        stride, grid = self._grid(given)
        width = at_block(given, hidden_width, given.dim, self.ratio, "ratio")
        x = given.tokens.as_grid()
        narrow_in = Shape(width, x.grid)  # after the first 1×1 conv, still on the input grid
        narrow, out = Shape(width, grid), Shape(given.dim, grid)
        parts = [
            self._conv(given, "conv1", x, narrow_in, 1),
            self._norm(given, "bn1", narrow_in),
            self._act(given, "act1", narrow_in),
            self._conv(given, "conv2", narrow_in, narrow, 3, stride),
            self._norm(given, "bn2", narrow),
            self._act(given, "act2", narrow),
            self._conv(given, "conv3", narrow, out, 1),
            self._norm(given, "bn3", out),
        ]
        flow = [Step(part.name) for part in parts]
        return self._finish(given, parts, flow, out, "act3", stride=stride, width=width)

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn.resnet_blocks import Bottleneck

        a = node.args
        block = Bottleneck(
            a["cin"],
            a["width"],
            a["dim"],
            a["stride"],
            build_node(node.child("bn1")),
            build_node(node.child("act1")),
            build_node(node.child("bn2")),
            build_node(node.child("act2")),
            build_node(node.child("bn3")),
            build_node(node.child("act3")),
            shortcut_module(node),
            drop_path(a["drop_path"]),
        )
        return initialise(block, block.bn3, a["_zero_init_last"])
