"""Stem ``conv``: Conv-BN-ReLU layers, then a strided projection conv and a LayerNorm."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.components._common import window_out
from archspec.flops import conv2d_flops
from archspec.plan import Node, Shape, Site
from archspec.registry import register
from archspec.specbase import StemSpec, StrictModel

if TYPE_CHECKING:
    from torch import nn


class ConvLayer(StrictModel):
    """One Conv-BN-ReLU layer; ``padding`` defaults to ``kernel // 2``."""

    channels: int = Field(ge=1, le=65_536)
    kernel: int = Field(3, ge=1)
    stride: int = Field(1, ge=1)
    padding: int | None = Field(None, ge=0)
    bias: bool = False


class Projection(StrictModel):
    """The strided conv from the last layer's channels to the first stage's width."""

    kernel: int = Field(3, ge=1)
    stride: int = Field(2, ge=1)
    padding: int | None = Field(None, ge=0)
    bias: bool = True


def _default_layers() -> tuple[ConvLayer, ...]:
    return (ConvLayer(channels=32, kernel=7, stride=2), ConvLayer(channels=32), ConvLayer(channels=32))


@register
class ConvStemSpec(StemSpec):
    type: Literal["conv"] = "conv"
    layers: tuple[ConvLayer, ...] = Field(default_factory=_default_layers, max_length=64)
    proj: Projection = Projection()
    norm_eps: float = Field(1e-5, gt=0)

    def plan(self, image: Shape, dim: int, site: Site) -> Node:
        assert image.grid is not None
        grid, channels = image.grid, image.channels
        params = flops = 0
        layers = []
        for index, layer in enumerate(self.layers):
            padding = layer.kernel // 2 if layer.padding is None else layer.padding
            grid = window_out(grid, layer.kernel, layer.stride, padding, ("layers", index), "this conv")
            params += channels * layer.channels * layer.kernel**2 + layer.channels * (layer.bias + 2)  # conv + BN
            flops += conv2d_flops(channels, layer.channels, layer.kernel, grid)
            layers.append(
                dict(
                    cin=channels,
                    cout=layer.channels,
                    kernel=layer.kernel,
                    stride=layer.stride,
                    padding=padding,
                    bias=layer.bias,
                )
            )
            channels = layer.channels
        proj = self.proj
        padding = proj.kernel // 2 if proj.padding is None else proj.padding
        grid = window_out(grid, proj.kernel, proj.stride, padding, "proj", "the projection")
        params += channels * dim * proj.kernel**2 + dim * proj.bias + 2 * dim  # proj + LayerNorm
        flops += conv2d_flops(channels, dim, proj.kernel, grid)
        return self.node(
            site,
            image,
            Shape(dim, grid, tokens=True),
            params,
            flops,
            layers=layers,
            proj=dict(cin=channels, cout=dim, kernel=proj.kernel, stride=proj.stride, padding=padding, bias=proj.bias),
            eps=self.norm_eps,
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from torch import nn

        from archspec.nn import Stem

        layers: list[nn.Module] = []
        for layer in node.args["layers"]:
            layers += [
                nn.Conv2d(
                    layer["cin"], layer["cout"], layer["kernel"], layer["stride"], layer["padding"], bias=layer["bias"]
                ),
                nn.BatchNorm2d(layer["cout"]),
                nn.ReLU(inplace=True),
            ]
        p = node.args["proj"]
        proj = nn.Conv2d(p["cin"], p["cout"], p["kernel"], p["stride"], p["padding"], bias=p["bias"])
        return Stem(nn.Sequential(*layers), proj, nn.LayerNorm(p["cout"], eps=node.args["eps"]))
