"""Mixer ``spectral``: a GFNet global filter over the token grid, optionally between two k×k convs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, field_validator

from archspec.flops import complex_mul_flops
from archspec.nodes import Node, Shape, Site, layer
from archspec.planning import conv_layer, fft_layers, needs_grid, odd_kernel
from archspec.registry import register
from archspec.specbase import MixerSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class SpectralArgs:
    """What ``SpectralSpec.build`` reads from its node."""

    dim: int
    height: int
    width: int
    conv_in: int | None
    conv_out: int | None
    resize: str


@register
class SpectralSpec(MixerSpec):
    """The filter's size is taken from the stage's token grid, so it is never written in the spec."""

    type: Literal["spectral"] = "spectral"
    build_args = SpectralArgs
    colour = "#cde4f7"
    conv_in: int | None = Field(None, ge=1, le=255, description="kernel of a conv before the filter (conv_input)")
    conv_out: int | None = Field(None, ge=1, le=255, description="kernel of a conv after the filter (conv_output)")
    resize: Literal["interpolate", "strict"] = Field(
        "interpolate", description="at another input size: resize the filter bilinearly, or refuse"
    )

    uses_fft: ClassVar[bool] = True
    _odd = field_validator("conv_in", "conv_out")(odd_kernel)

    def size_policy(self) -> str | None:
        return self.resize  # the filter has one weight per frequency of the built grid

    def plan(self, tokens: Shape, site: Site) -> Node:
        height, width = needs_grid(tokens, "a spectral filter")
        dim = tokens.channels
        bins = height * (width // 2 + 1)
        grid = tokens.as_grid()  # what the convs see
        spectrum, rfft, irfft = fft_layers(site, tokens, Shape.of(height, width, dim))

        def conv(name: str, kernel: int | None, module: str) -> list[Node]:
            return [conv_layer(site, name, grid, grid, kernel, module=site.sub(module))] if kernel else []

        weight = (site.sub("complex_weight"),)  # one complex value per frequency bin and channel
        params, product = 2 * bins * dim, complex_mul_flops(bins * dim)
        gate = layer(
            site, "filter", "filter", spectrum, spectrum, params, product, weight, "complex weight", "global filter"
        )
        layers = [
            *conv("conv_in", self.conv_in, "conv_input"),
            rfft,
            gate,
            irfft,
            *conv("conv_out", self.conv_out, "conv_output"),
        ]
        return self.node(
            site,
            tokens,
            tokens,
            children=layers,
            dim=dim,
            height=height,
            width=width,
            conv_in=self.conv_in,
            conv_out=self.conv_out,
            resize=self.resize,
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn import SpectralGatingNetwork
        from archspec.nn.init import init_fan_out

        a = node.args
        return init_fan_out(SpectralGatingNetwork(a.dim, a.height, a.width, a.conv_in, a.conv_out, a.resize))
