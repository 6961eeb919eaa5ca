"""Block ``basic``: ResNet's two 3×3 conv-norm layers around a shortcut (ResNet-18, ResNet-34)."""

from __future__ import annotations

from typing import ClassVar, Literal

from archspec.components._resnet import Conv, ResNetBlockSpec
from archspec.flow import Form
from archspec.nodes import BlockInput
from archspec.registry import register


@register
class BasicBlockSpec(ResNetBlockSpec):
    """``act(norm(conv3×3(act(norm(conv3×3/stride(x))))) + shortcut(x))``. The stage's first block takes
    the stage's width and ``stride``; its shortcut is then a strided 1×1 conv and a norm."""

    type: Literal["basic"] = "basic"

    printed: ClassVar[str] = "BasicBlock"

    def form(self, given: BlockInput) -> Form:
        stride = self._stride(given)
        return self._form(given, [Conv(given.dim, 3, stride), Conv(given.dim, 3)], stride)
