"""Mixer ``sepconv``: ConvFormer's inverted separable conv, pointwise up → act → k×k depthwise → pointwise down."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from archspec.nodes import Node, Shape, Site
from archspec.planning import child_site, conv_layer, hidden_width, linear_layer, needs_grid, odd_kernel
from archspec.registry import build_node, register
from archspec.slots import Slot, default_component
from archspec.specbase import ActSpec, MixerSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class SepConvArgs:
    """What ``SepConvSpec.build`` reads from its node."""

    dim: int
    hidden: int
    kernel: int
    bias: bool


@register
class SepConvSpec(MixerSpec):
    """``pwconv1`` widens each token to dim × ``ratio``, ``act`` follows it, a ``kernel``×``kernel``
    depthwise conv mixes neighbouring tokens, and ``pwconv2`` goes back to dim (MetaFormer's SepConv;
    its second activation is the identity). ``bias`` applies to all three layers."""

    type: Literal["sepconv"] = "sepconv"
    build_args = SepConvArgs
    colour = "#d0e0e3"
    ratio: float = Field(2.0, gt=0, le=64, description="width of the depthwise conv = dim × ratio")
    kernel: int = Field(7, ge=1, le=63, description="the depthwise conv's kernel (odd)")
    bias: bool = False
    act: Slot[ActSpec] = Field(default_factory=default_component("act", "star_relu"))

    _odd = field_validator("kernel")(odd_kernel)

    def plan(self, tokens: Shape, site: Site) -> Node:
        grid = needs_grid(tokens, "a depthwise conv")
        dim = tokens.channels
        hidden = hidden_width(dim, self.ratio, "ratio")
        pwconv1 = linear_layer(site, "pwconv1", tokens, hidden, self.bias)
        act1 = self.act.plan(pwconv1.out_shape, child_site(site, "act", "act1"))
        wide = Shape(hidden, grid)  # what the depthwise conv sees
        dwconv = conv_layer(site, "dwconv", wide, wide, self.kernel, bias=self.bias, groups=hidden)
        pwconv2 = linear_layer(site, "pwconv2", pwconv1.out_shape, dim, self.bias)
        return self.node(
            site,
            tokens,
            tokens,
            children=(pwconv1, act1, dwconv, pwconv2),
            dim=dim,
            hidden=hidden,
            kernel=self.kernel,
            bias=self.bias,
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn.init import init_trunc_normal_convs
        from archspec.nn.sepconv import SepConv

        a = node.args
        act1 = build_node(node.child("act1"))
        return init_trunc_normal_convs(SepConv(a.dim, a.hidden, a.kernel, act1, bias=a.bias))
