"""Block ``bottleneck``: ResNet's 1×1 → 3×3 → 1×1 conv-norm layers around a shortcut (ResNet-50 and up),
with RegNet's grouped 3×3 conv and squeeze-excitation as options."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from archspec.components._resnet import Conv, ResNetBlockSpec, at_block
from archspec.components.part_se import SePartSpec
from archspec.errors import KeyPath
from archspec.flow import Form
from archspec.nodes import BlockInput, PlanProblem
from archspec.planning import hidden_width
from archspec.registry import register
from archspec.specbase import PartSpec


@register
class BottleneckBlockSpec(ResNetBlockSpec):
    """A 1×1 conv narrows to ``dim × ratio`` channels, a 3×3 conv (strided in the stage's first block,
    as in ResNet v1.5) mixes them, and a 1×1 conv widens back to the stage's ``dim``; each is followed
    by a norm, the first two by an activation, and the last activation comes after the addition.

    RegNet's block is this one with ``ratio: 1``, a ``group_width`` (the 3×3 conv runs
    ``width / group_width`` groups) and, for RegNetY, ``se`` after the 3×3 conv's activation."""

    type: Literal["bottleneck"] = "bottleneck"
    ratio: float = Field(0.25, gt=0, le=64, description="inner width / output width (timm: 1 / expansion 4)")
    group_width: int | None = Field(
        None, ge=1, le=1 << 16, description="channels per group of the 3×3 conv (RegNet); one group when left out"
    )
    se: SePartSpec | None = Field(
        None,
        description="squeeze-excitation after the 3×3 conv's activation (RegNetY); its ratio counts from the "
        "block's input width",
    )

    printed: ClassVar[str] = "Bottleneck"

    def form(self, given: BlockInput) -> Form:
        stride = self._stride(given)
        width = at_block(given, hidden_width, given.dim, self.ratio, "ratio")
        groups = 1
        if self.group_width is not None:
            if width % self.group_width:
                message = f"group width {self.group_width} does not divide the inner width {width}"
                raise PlanProblem((*given.site.spec_path, "group_width"), message)
            groups = width // self.group_width
        after = {} if self.se is None else {2: ("se", self._se(given))}
        convs = [Conv(width, 1), Conv(width, 3, stride, groups), Conv(given.dim, 1)]
        return self._form(given, convs, stride, after)

    def _se(self, given: BlockInput) -> tuple[PartSpec, KeyPath]:
        """The squeeze-excitation part with its squeezed width fixed: RegNet squeezes the inner
        channels to the block's input width × ratio, not to a share of the inner width."""
        assert self.se is not None
        channels = self.se.squeezed(given.tokens.channels)
        fields = self.se.model_dump(exclude={"ratio", "channels", "divisor"})
        spec = SePartSpec.model_validate({**fields, "type": "se", "channels": channels})
        return spec, (*given.site.spec_path, "se")
