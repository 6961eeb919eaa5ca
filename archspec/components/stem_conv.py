"""Stem ``conv``: Conv-BN-ReLU layers, then a strided projection conv and a LayerNorm."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.components._common import conv_layer, conv_text, norm_layer, window_out
from archspec.flops import conv2d_flops
from archspec.plan import Node, Shape, Site, layer
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
        grid, cin = image.grid, image.channels
        children: list[Node] = []
        layers = []
        for index, conv in enumerate(self.layers):
            padding = conv.kernel // 2 if conv.padding is None else conv.padding
            grid = window_out(grid, conv.kernel, conv.stride, padding, ("layers", index), "this conv")
            # Conv2d, BatchNorm2d (a weight and a bias per channel) and ReLU: three modules, one layer.
            params = cin * conv.channels * conv.kernel**2 + conv.channels * (conv.bias + 2)
            flops = conv2d_flops(cin, conv.channels, conv.kernel, grid)
            modules = tuple(site.sub(f"conv.{3 * index + j}") for j in range(3))
            detail = conv_text(conv.kernel, conv.stride, cin, conv.channels, "Conv-BN-ReLU")
            x = children[-1].out_shape if children else image
            out = Shape(conv.channels, grid)
            name, title = f"layers[{index}]", f"conv {index + 1}"
            children.append(layer(site, "conv-bn-relu", name, x, out, params, flops, modules, detail, title))
            layers.append(
                dict(
                    cin=cin, cout=conv.channels, kernel=conv.kernel, stride=conv.stride, padding=padding, bias=conv.bias
                )
            )
            cin = conv.channels
        proj = self.proj
        padding = proj.kernel // 2 if proj.padding is None else proj.padding
        x = Shape(cin, grid)
        grid = window_out(grid, proj.kernel, proj.stride, padding, "proj", "the projection")
        tokens = Shape(dim, grid, tokens=True)
        children.append(conv_layer(site, "proj", x, Shape(dim, grid), proj.kernel, proj.stride, proj.bias))
        children.append(norm_layer(site, "norm", tokens))
        return self.node(
            site,
            image,
            tokens,
            children=children,
            layers=layers,
            proj=dict(cin=cin, cout=dim, kernel=proj.kernel, stride=proj.stride, padding=padding, bias=proj.bias),
            eps=self.norm_eps,
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from torch import nn

        from archspec.nn import Stem

        layers: list[nn.Module] = []
        for conv in node.args["layers"]:
            layers += [
                nn.Conv2d(
                    conv["cin"], conv["cout"], conv["kernel"], conv["stride"], conv["padding"], bias=conv["bias"]
                ),
                nn.BatchNorm2d(conv["cout"]),
                nn.ReLU(inplace=True),
            ]
        p = node.args["proj"]
        proj = nn.Conv2d(p["cin"], p["cout"], p["kernel"], p["stride"], p["padding"], bias=p["bias"])
        return Stem(nn.Sequential(*layers), proj, nn.LayerNorm(p["cout"], eps=node.args["eps"]))
