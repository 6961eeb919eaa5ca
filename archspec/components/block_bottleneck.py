"""Block ``bottleneck``: ResNet's 1×1 → 3×3 → 1×1 conv-norm layers around a shortcut (ResNet-50 and up)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from archspec.components._resnet import ResNetBlockSpec, at_block
from archspec.flow import Form
from archspec.nodes import BlockInput
from archspec.planning import hidden_width
from archspec.registry import register


@register
class BottleneckBlockSpec(ResNetBlockSpec):
    """A 1×1 conv narrows to ``dim × ratio`` channels, a 3×3 conv (strided in the stage's first block,
    as in ResNet v1.5) mixes them, and a 1×1 conv widens back to the stage's ``dim``; each is followed
    by a norm, the first two by an activation, and the last activation comes after the addition."""

    type: Literal["bottleneck"] = "bottleneck"
    ratio: float = Field(0.25, gt=0, le=64, description="inner width / output width (timm: 1 / expansion 4)")

    printed: ClassVar[str] = "Bottleneck"

    def form(self, given: BlockInput) -> Form:
        stride = self._stride(given)
        width = at_block(given, hidden_width, given.dim, self.ratio, "ratio")
        return self._form(given, [(width, 1, 1), (width, 3, stride), (given.dim, 1, 1)], stride)
