"""Downsample ``conv``: a strided k×k conv from one stage's grid to the next stage's tokens, then a LayerNorm."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.components._common import conv_layer, norm_layer, window_out
from archspec.plan import Node, Shape, Site
from archspec.registry import register
from archspec.specbase import DownsampleSpec

if TYPE_CHECKING:
    from torch import nn


@register
class ConvDownsampleSpec(DownsampleSpec):
    type: Literal["conv"] = "conv"
    kernel: int = Field(3, ge=1)
    stride: int = Field(2, ge=1)
    padding: int | None = Field(None, ge=0)
    norm_eps: float = Field(1e-5, gt=0)

    def plan(self, grid: Shape, dim: int, site: Site) -> Node:
        assert grid.grid is not None
        padding = self.kernel // 2 if self.padding is None else self.padding
        out = window_out(grid.grid, self.kernel, self.stride, padding, (), "the downsample conv")
        tokens = Shape(dim, out, tokens=True)
        proj = conv_layer(site, "proj", grid, Shape(dim, out), self.kernel, self.stride)
        return self.node(
            site,
            grid,
            tokens,
            children=(proj, norm_layer(site, "norm", tokens)),
            cin=grid.channels,
            dim=dim,
            kernel=self.kernel,
            stride=self.stride,
            padding=padding,
            eps=self.norm_eps,
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from torch import nn

        from archspec.nn import DownSamples

        a = node.args
        proj = nn.Conv2d(a["cin"], a["dim"], a["kernel"], a["stride"], a["padding"])
        return DownSamples(proj, nn.LayerNorm(a["dim"], eps=a["eps"]))
