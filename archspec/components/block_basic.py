"""Block ``basic``: ResNet's two 3×3 conv-norm layers around a shortcut (ResNet-18, ResNet-34)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from archspec.components._blocks import drop_path
from archspec.components._resnet import ResNetBlockSpec, initialise, shortcut_module
from archspec.plan import BlockInput, Node, Shape, Step
from archspec.registry import build_node, register

if TYPE_CHECKING:
    from torch import nn


@register
class BasicBlockSpec(ResNetBlockSpec):
    """``act(norm(conv3×3(act(norm(conv3×3/stride(x))))) + shortcut(x))``. The stage's first block takes
    the stage's width and ``stride``; its shortcut is then a strided 1×1 conv and a norm."""

    type: Literal["basic"] = "basic"

    def plan(self, given: BlockInput) -> Node:
        stride, grid = self._grid(given)
        x, out = given.tokens.as_grid(), Shape(given.dim, grid)
        parts = [
            self._conv(given, "conv1", x, out, 3, stride),
            self._norm(given, "bn1", out),
            self._act(given, "act1", out),
            self._conv(given, "conv2", out, out, 3),
            self._norm(given, "bn2", out),
        ]
        flow = [Step(part.name) for part in parts]
        return self._finish(given, parts, flow, out, "act2", stride=stride)

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn.resnet_blocks import BasicBlock

        a = node.args
        block = BasicBlock(
            a["cin"],
            a["dim"],
            a["stride"],
            build_node(node.child("bn1")),
            build_node(node.child("act1")),
            build_node(node.child("bn2")),
            build_node(node.child("act2")),
            shortcut_module(node),
            drop_path(a["drop_path"]),
        )
        return initialise(block, block.bn2, a["_zero_init_last"])
