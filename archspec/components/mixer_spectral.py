"""Mixer ``spectral``: a GFNet global filter over the token grid, optionally between two k×k convs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from archspec.components._common import odd_kernel
from archspec.flops import complex_mul_flops, conv2d_flops, fft2_plane_flops
from archspec.plan import Node, Shape, Site
from archspec.registry import register
from archspec.specbase import MixerSpec

if TYPE_CHECKING:
    from torch import nn


@register
class SpectralSpec(MixerSpec):
    """The filter's size is taken from the stage's token grid, so it is never written in the spec."""

    type: Literal["spectral"] = "spectral"
    conv_in: int | None = Field(None, ge=1, description="kernel of a conv before the filter (conv_input)")
    conv_out: int | None = Field(None, ge=1, description="kernel of a conv after the filter (conv_output)")

    _odd = field_validator("conv_in", "conv_out")(odd_kernel)

    def plan(self, tokens: Shape, site: Site) -> Node:
        assert tokens.grid is not None
        height, width = tokens.grid
        dim = tokens.channels
        bins = height * (width // 2 + 1)
        params = 2 * bins * dim
        flops = 2 * dim * fft2_plane_flops(height, width) + complex_mul_flops(bins * dim)
        for kernel in (self.conv_in, self.conv_out):
            if kernel:
                params += dim * dim * kernel**2 + dim
                flops += conv2d_flops(dim, dim, kernel, tokens.grid)
        return self.node(
            site,
            tokens,
            tokens,
            params,
            flops,
            dim=dim,
            height=height,
            width=width,
            conv_in=self.conv_in,
            conv_out=self.conv_out,
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn import SpectralGatingNetwork

        a = node.args
        return SpectralGatingNetwork(a["dim"], a["height"], a["width"], a["conv_in"], a["conv_out"])
