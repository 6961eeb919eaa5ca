"""Mixer ``dwconv``: a depthwise k×k conv over the token grid, with a bias (ConvNeXt's ``conv_dw``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from archspec.nodes import Node, Shape, Site
from archspec.planning import conv_layer, needs_grid, odd_kernel
from archspec.registry import register
from archspec.specbase import MixerSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class DepthwiseConvArgs:
    """What ``DepthwiseConvSpec.build`` reads from its node."""

    dim: int
    kernel: int
    bias: bool


@register
class DepthwiseConvSpec(MixerSpec):
    """Each channel is mixed over its own k×k neighbourhood; padding ``kernel // 2`` keeps the grid, so
    ``kernel`` must be odd."""

    type: Literal["dwconv"] = "dwconv"
    build_args = DepthwiseConvArgs
    colour = "#c8e6e0"
    kernel: int = Field(7, ge=1, le=255, description="the conv's (odd) kernel size")
    bias: bool = True

    _odd = field_validator("kernel")(odd_kernel)

    def plan(self, tokens: Shape, site: Site) -> Node:
        needs_grid(tokens, "a depthwise conv")
        dim = tokens.channels
        grid = tokens.as_grid()  # what the conv sees
        detail = f"depthwise Conv2d {self.kernel}×{self.kernel}, {dim} channels"
        conv = conv_layer(site, "conv", grid, grid, self.kernel, 1, self.bias, groups=dim, detail=detail)
        return self.node(site, tokens, tokens, children=(conv,), dim=dim, kernel=self.kernel, bias=self.bias)

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn.dwconv import DepthwiseConv
        from archspec.nn.init import init_trunc_normal_convs

        a = node.args
        return init_trunc_normal_convs(DepthwiseConv(a.dim, a.kernel, a.bias))
