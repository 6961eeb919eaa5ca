"""Block ``mbconv``: the inverted residual of MobileNetV2/V3 and EfficientNet (1×1 expand → depthwise
k×k → optional squeeze-excitation → 1×1 project)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from archspec.components._mobile import MobileBlockSpec
from archspec.errors import KeyPath
from archspec.flow import Form, part
from archspec.nodes import BlockInput
from archspec.planning import round_channels
from archspec.registry import register
from archspec.specbase import PartSpec


@register
class MbConvBlockSpec(MobileBlockSpec):
    """A 1×1 conv widens the input to ``expand`` times its width (rounded to a multiple of ``divisor``),
    a depthwise conv mixes each channel over its window, an optional squeeze-excitation gates the
    channels, and a 1×1 conv projects to the stage's width. The first two convs' norms are followed by
    the block's activation; the projection's is not (a linear bottleneck). The squeeze-excitation's
    ratio applies to the block's input width (``se_from: input``, EfficientNet) or to the expanded
    width (``se_from: expanded``, MobileNetV3)."""

    type: Literal["mbconv"] = "mbconv"
    printed: ClassVar[str] = "InvertedResidual"
    expand: float = Field(6.0, gt=0, le=64, description="expanded width / input width (timm: exp_ratio)")
    divisor: int = Field(8, ge=1, le=256, description="round the expanded width to a multiple of this (timm: 8)")
    se_from: Literal["input", "expanded"] = Field(
        "input", description="the width the squeeze-excitation's ratio applies to"
    )

    def form(self, given: BlockInput) -> Form:
        here = given.site.spec_path
        stride = self._stride(given)
        cin = given.tokens.channels
        mid = round_channels(cin * self.expand, self.divisor)
        parts: dict[str, tuple[PartSpec, KeyPath]] = {
            "conv_pw": part("conv", here, out=mid, kernel=1),
            "bn1": part("norm", here),
            "act1": part("act", here),
            "conv_dw": part("conv", here, out=mid, kernel=self.kernel, stride=stride, groups=mid),
            "bn2": part("norm", here),
            "act2": part("act", here),
        }
        line: list[Any] = list(parts)
        if self.se is not None:
            parts["se"] = self._se(here, cin if self.se_from == "input" else mid)
            line.append("se")
        parts["conv_pwl"] = part("conv", here, kernel=1)
        parts["bn3"] = part("norm", here)
        line += ["conv_pwl", "bn3"]
        return self._end(given, parts, line, stride)
