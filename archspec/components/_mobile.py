"""What the MobileNet and EfficientNet blocks (``mbconv``, ``dsconv``) share: their fields, the stride
check, the squeeze-excitation's width and the residual that ends their forms."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator

from archspec.components._resnet import at_block
from archspec.components.part_se import SePartSpec
from archspec.errors import KeyPath
from archspec.flow import FlowBlockSpec, Form, Line, part
from archspec.nodes import BlockInput
from archspec.planning import needs_grid, odd_kernel, window_out
from archspec.slots import Slot, default_component
from archspec.specbase import ActSpec, NormSpec, PartSpec


class MobileBlockSpec(FlowBlockSpec):
    """A conv block built around one depthwise ``kernel``×``kernel`` conv, each conv followed by a norm
    (and most by an activation). The stage's first block changes the width to the stage's ``dim`` and,
    with ``stride``, the grid (its depthwise conv strides). The input is added back only where the
    block keeps the shape (and ``skip`` is on); stochastic depth drops that residual branch."""

    uses_mixer: ClassVar[bool] = False
    uses_ffn: ClassVar[bool] = False
    colour = "#d9f2d0"
    printed: ClassVar[str]
    """What the built block prints as (timm's class name)."""
    # The generated tests also plan a stage whose first block strides and widens (no skip there).
    example: ClassVar[dict[str, Any]] = {"stages.1.downsample": {"type": "none"}, "stages.1.block.stride": 2}
    kernel: int = Field(3, ge=1, le=31, description="the depthwise conv's window (odd)")
    stride: int = Field(1, ge=1, le=16, description="stride of the stage's first block (its depthwise conv)")
    skip: bool = Field(True, description="add the input back where the block keeps the shape (timm: not noskip)")
    norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "batchnorm"))
    act: Slot[ActSpec] = Field(default_factory=default_component("act", "relu"))
    se: SePartSpec | None = Field(None, description="squeeze-excitation after the depthwise conv")

    _odd = field_validator("kernel")(odd_kernel)

    def _stride(self, given: BlockInput) -> int:
        """The stride this block applies (only the stage's first block strides), checked against its grid."""
        grid = at_block(given, needs_grid, given.tokens, f"an {self.type} block")
        stride = self.stride if given.first else 1
        window_out(grid, self.kernel, stride, self.kernel // 2, (*given.site.spec_path, "stride"), "the depthwise conv")
        return stride

    def _se(self, here: KeyPath, width: int) -> tuple[PartSpec, KeyPath]:
        """The squeeze-excitation part, squeezing ``width`` channels by its ratio (to a fixed width)."""
        assert self.se is not None
        return self.se.model_copy(update={"channels": self.se.squeezed(width)}), (*here, "se")

    def _end(self, given: BlockInput, parts: dict[str, tuple[PartSpec, KeyPath]], line: list[Any], stride: int) -> Form:
        """The form of ``line`` over ``parts``, with the residual where the block keeps the shape."""
        here = given.site.spec_path
        if self.skip and stride == 1 and given.tokens.channels == given.dim:
            parts["drop_path"] = part("drop_path", here)
            line += ["drop_path", "add"]
        lines: tuple[Line, ...] = (tuple(line),)
        return Form(self.printed, parts, lines, here)
