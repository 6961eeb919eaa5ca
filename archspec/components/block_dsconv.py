"""Block ``dsconv``: the depthwise-separable conv of MobileNet and EfficientNet's first stage
(depthwise k×k → optional squeeze-excitation → 1×1 project)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from archspec.components._mobile import MobileBlockSpec
from archspec.errors import KeyPath
from archspec.flow import Form, part
from archspec.nodes import BlockInput
from archspec.registry import register
from archspec.specbase import PartSpec


@register
class DsConvBlockSpec(MobileBlockSpec):
    """A depthwise conv (its norm followed by the block's activation), an optional squeeze-excitation
    of its output (its ratio applies to the block's input width), and a 1×1 conv to the stage's width
    whose norm is followed by the activation only with ``pw_act``. No expansion: an inverted residual
    with ``expand: 1`` would add a 1×1 conv in front."""

    type: Literal["dsconv"] = "dsconv"
    printed: ClassVar[str] = "DepthwiseSeparableConv"
    pw_act: bool = Field(False, description="an activation after the 1×1 conv's norm too")

    def form(self, given: BlockInput) -> Form:
        here = given.site.spec_path
        stride = self._stride(given)
        cin = given.tokens.channels
        parts: dict[str, tuple[PartSpec, KeyPath]] = {
            "conv_dw": part("conv", here, out=cin, kernel=self.kernel, stride=stride, groups=cin),
            "bn1": part("norm", here),
            "act1": part("act", here),
        }
        line: list[Any] = list(parts)
        if self.se is not None:
            parts["se"] = self._se(here, cin)
            line.append("se")
        parts["conv_pw"] = part("conv", here, kernel=1)
        parts["bn2"] = part("norm", here)
        line += ["conv_pw", "bn2"]
        if self.pw_act:
            parts["act2"] = part("act", here)
            line.append("act2")
        return self._end(given, parts, line, stride)
