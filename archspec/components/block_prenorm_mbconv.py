"""Block ``prenorm_mbconv``: the MBConv of CoAtNet, a norm before the inverted bottleneck instead of after
each of its convs, and a pooled shortcut where the stage's first block changes the grid or the width."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from archspec.components._mobile import MobileBlockSpec
from archspec.errors import KeyPath
from archspec.flow import Combine, Form, Line, part
from archspec.nodes import BlockInput
from archspec.planning import round_channels
from archspec.registry import register
from archspec.specbase import PartSpec


@register
class PrenormMbConvBlockSpec(MobileBlockSpec):
    """``pre_norm`` (with the block's activation if ``pre_act``) normalises the input; a 1×1 conv widens it
    to ``expand`` times the block's input or output width (``expand_from``, rounded to a multiple of
    ``divisor``), then norm + act, a depthwise ``kernel``×``kernel`` conv, norm + act, and a 1×1 conv (with
    ``bias``) to the stage's width, added to the input (unless ``skip: false``). The stage's first block
    strides by ``stride``: in the depthwise conv (``stride_at: dw``) or by averaging stride × stride cells
    before the 1×1 conv (``stride_at: pool``); its shortcut averages the cells the same way and widens with
    a 1×1 conv (with ``bias``). The squeeze-excitation ``se`` (its ratio of the expanded width, or of the
    output width with ``expand_from: output``) gates the depthwise conv's output after its norm, or before
    it with ``se_early``. Module names follow timm's ``MbConvBlock`` (``timm/models/maxxvit.py``)."""

    type: Literal["prenorm_mbconv"] = "prenorm_mbconv"
    printed: ClassVar[str] = "MbConvBlock"
    example: ClassVar[dict[str, Any]] = {
        "stages.1.downsample": {"type": "none"},
        "stages.1.block.stride": 2,
        "stages.1.block.stride_at": "pool",
    }
    expand: float = Field(4.0, gt=0, le=64, description="expanded width / the width expand_from names")
    expand_from: Literal["input", "output"] = Field(
        "output", description="the width the expansion (and the squeeze-excitation's ratio) applies to"
    )
    divisor: int = Field(8, ge=1, le=256, description="round the expanded width to a multiple of this (timm: 8)")
    stride_at: Literal["dw", "pool"] = Field(
        "dw", description="where the first block strides: its depthwise conv, or an average pool before the 1×1 conv"
    )
    pre_act: bool = Field(False, description="the block's activation after the pre-norm (timm: pre_norm_act)")
    se_early: bool = Field(False, description="the squeeze-excitation before the depthwise conv's norm, not after")
    bias: bool = Field(True, description="a bias in the last 1×1 conv and the shortcut's conv (timm: output_bias)")

    def form(self, given: BlockInput) -> Form:
        here = given.site.spec_path
        stride = self._stride(given)
        cin, cout = given.tokens.channels, given.dim
        mid = round_channels((cin if self.expand_from == "input" else cout) * self.expand, self.divisor)
        reshaped = stride > 1 or cin != cout
        parts: dict[str, tuple[PartSpec, KeyPath]] = {}
        if reshaped:
            parts["shortcut"] = part("pool_projection", here, out=cout, stride=stride, bias=self.bias)
        parts["pre_norm"] = part("norm", here)
        line: list[Any] = ["pre_norm"]
        if self.pre_act:
            parts["pre_act"] = part("act", here)
            line.append("pre_act")
        dw_stride = stride
        if stride > 1 and self.stride_at == "pool":
            parts["down"] = part("pool_projection", here, out=cin, stride=stride)
            line.append("down")
            dw_stride = 1
        parts |= {
            "conv1_1x1": part("conv", here, out=mid, kernel=1),
            "norm1": part("norm", here),
            "act1": part("act", here),
            "conv2_kxk": part("conv", here, out=mid, kernel=self.kernel, stride=dw_stride, groups=mid),
        }
        line += ["conv1_1x1", "norm1", "act1", "conv2_kxk"]
        se = self._se(here, mid if self.expand_from == "input" else cout) if self.se is not None else None
        if se is not None and self.se_early:
            parts["se_early"] = se
            line.append("se_early")
        parts |= {"norm2": part("norm", here), "act2": part("act", here)}
        line += ["norm2", "act2"]
        if se is not None and not self.se_early:
            parts["se"] = se
            line.append("se")
        parts["conv3_1x1"] = part("conv", here, out=cout, kernel=1, bias=self.bias)
        line.append("conv3_1x1")
        if reshaped or self.skip:
            parts["drop_path"] = part("drop_path", here)
            line += ["drop_path", Combine(add="shortcut") if reshaped else "add"]
        lines: tuple[Line, ...] = (tuple(line),)
        return Form(self.printed, parts, lines, here)
