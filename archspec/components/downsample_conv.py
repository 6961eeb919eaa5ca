"""Downsample ``conv``: a strided k×k conv from one stage's grid to the next stage's tokens, and a norm
after it (SpectFormer, PVT-v2) or, with ``norm_first``, before it (ConvNeXt, MetaFormer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.nodes import Node, Shape, Site
from archspec.planning import child_site, conv_layer, window_out
from archspec.registry import build_node, register
from archspec.slots import Slot, default_component
from archspec.specbase import DownsampleSpec, NormSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class ConvDownsampleArgs:
    """What ``ConvDownsampleSpec.build`` reads from its node."""

    cin: int
    dim: int
    kernel: int
    stride: int
    padding: int
    bias: bool
    norm_first: bool


@register
class ConvDownsampleSpec(DownsampleSpec):
    type: Literal["conv"] = "conv"
    build_args = ConvDownsampleArgs
    kernel: int = Field(3, ge=1, le=255)
    stride: int = Field(2, ge=1, le=64)
    padding: int | None = Field(None, ge=0, le=127, description="default: kernel // 2")
    bias: bool = True
    norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "layernorm", eps=1e-5))
    norm_first: bool = Field(False, description="normalise the incoming grid before the conv instead of after it")

    def shown(self) -> str:
        padding = self.kernel // 2 if self.padding is None else self.padding
        return super(ConvDownsampleSpec, self.model_copy(update={"padding": padding})).shown()

    def plan(self, grid: Shape, dim: int, site: Site) -> Node:
        assert grid.grid is not None
        padding = self.kernel // 2 if self.padding is None else self.padding
        out = window_out(grid.grid, self.kernel, self.stride, padding, (), "the downsample conv")
        tokens = Shape(dim, out, tokens=True)
        proj = conv_layer(site, "proj", grid, Shape(dim, out), self.kernel, self.stride, self.bias)
        if self.norm_first:
            parts = (self.norm.plan(grid, child_site(site, "norm")), proj)
        else:
            parts = (proj, self.norm.plan(tokens, child_site(site, "norm")))
        return self.node(
            site,
            grid,
            tokens,
            children=parts,
            cin=grid.channels,
            dim=dim,
            kernel=self.kernel,
            stride=self.stride,
            padding=padding,
            bias=self.bias,
            norm_first=self.norm_first,
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from torch import nn

        from archspec.nn import DownSamples
        from archspec.nn.init import init_fan_out

        a = node.args
        proj = init_fan_out(nn.Conv2d(a.cin, a.dim, a.kernel, a.stride, a.padding, bias=a.bias))
        return DownSamples(proj, build_node(node.child("norm")), a.norm_first)
