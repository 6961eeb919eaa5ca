"""Stem ``conv``: conv layers (each Conv-BN-ReLU by default), an optional max-pool, then an optional strided
projection conv and a norm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from archspec import registry
from archspec.flops import conv2d_flops, same_out
from archspec.nodes import Node, Shape, Site, layer
from archspec.planning import child_site, conv_layer, conv_text, window_out
from archspec.registry import build_node, register
from archspec.slots import Slot, default_component
from archspec.specbase import ActSpec, NormSpec, StemSpec, StrictModel

if TYPE_CHECKING:
    from torch import nn


class ConvLayer(StrictModel):
    """One conv layer, a BatchNorm (unless ``norm: false``) and an activation (``act: null`` for none):
    Conv-BN-ReLU by default. ``padding`` defaults to ``kernel // 2``; ``same`` pads as TensorFlow's SAME
    padding does (ceil(size / stride) cells out, the odd padding cell at the bottom and right)."""

    channels: int = Field(ge=1, le=65_536)
    kernel: int = Field(3, ge=1, le=255)
    stride: int = Field(1, ge=1, le=64)
    padding: Annotated[int, Field(ge=0, le=127)] | Literal["same"] | None = None
    bias: bool = False
    norm: bool = Field(True, description="a BatchNorm after the conv")
    eps: float = Field(1e-5, gt=0, lt=1, description="the BatchNorm's eps")
    act: Slot[ActSpec] | None = Field(
        default_factory=default_component("act", "relu"), description="the activation after the conv (and norm)"
    )


class Pool(StrictModel):
    """A max-pooling window after the conv layers (ResNet's stem); ``padding`` defaults to ``kernel // 2``."""

    kernel: int = Field(3, ge=1, le=255)
    stride: int = Field(2, ge=1, le=64)
    padding: int | None = Field(None, ge=0, le=127)


class Projection(StrictModel):
    """The strided conv from the last layer's channels to the first stage's width."""

    kernel: int = Field(3, ge=1, le=255)
    stride: int = Field(2, ge=1, le=64)
    padding: int | None = Field(None, ge=0, le=127)
    bias: bool = True


def _default_layers() -> tuple[ConvLayer, ...]:
    return (ConvLayer(channels=32, kernel=7, stride=2), ConvLayer(channels=32), ConvLayer(channels=32))


@dataclass(frozen=True)
class ConvStemArgs:
    """What ``ConvStemSpec.build`` reads from its node."""

    layers: list[dict[str, Any]]
    pool: dict[str, Any] | None
    proj: dict[str, Any] | None


@register
class ConvStemSpec(StemSpec):
    type: Literal["conv"] = "conv"
    build_args = ConvStemArgs
    """With ``proj: null`` the last conv layer (or the pool) gives the first stage its tokens at its own
    width; the stage's blocks must then take that width to the stage's."""

    layers: tuple[ConvLayer, ...] = Field(default_factory=_default_layers, min_length=1, max_length=64)
    pool: Pool | None = None
    proj: Projection | None = Projection()
    norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "layernorm", eps=1e-5))

    def plan(self, image: Shape, dim: int, site: Site) -> Node:
        assert image.grid is not None
        grid, cin = image.grid, image.channels
        children: list[Node] = []
        layers = []
        at = 0  # the index of the next module in the stem's Sequential
        for index, conv in enumerate(self.layers):
            grid_in = grid
            padding = conv.kernel // 2 if conv.padding in (None, "same") else conv.padding
            assert isinstance(padding, int)
            grid = window_out(grid, conv.kernel, conv.stride, padding, ("layers", index), "this conv")
            if conv.padding == "same":
                grid = (same_out(grid_in[0], conv.stride), same_out(grid_in[1], conv.stride))
            out = Shape(conv.channels, grid)
            # Conv2d, BatchNorm2d (a weight and a bias per channel) and the activation: one layer.
            count = 1 + conv.norm + (conv.act is not None)
            modules = tuple(site.sub(f"conv.{at + j}") for j in range(count))
            act = None
            if conv.act is not None:
                act_path = (*site.spec_path, "layers", index, "act")
                act = conv.act.plan(out, Site(act_path, modules[-1]))
            params = cin * conv.channels * conv.kernel**2 + conv.channels * (conv.bias + 2 * conv.norm)
            params += act.params if act is not None else 0
            flops = conv2d_flops(cin, conv.channels, conv.kernel, grid)
            names = ["Conv", *(["BN"] if conv.norm else []), *([act.detail] if act is not None else [])]
            detail = conv_text(conv.kernel, conv.stride, cin, conv.channels, "-".join(names))
            x = children[-1].out_shape if children else image
            name, title = f"layers[{index}]", f"conv {index + 1}"
            component = "-".join(names).lower()
            children.append(layer(site, component, name, x, out, params, flops, modules, detail, title))
            layers.append(
                dict(
                    cin=cin,
                    cout=conv.channels,
                    kernel=conv.kernel,
                    stride=conv.stride,
                    padding=padding,
                    bias=conv.bias,
                    norm=conv.norm,
                    # The activation's own spec (it is no child of the layer, whose numbers it would not split).
                    act=None if conv.act is None else {"type": conv.act.type, **conv.act.model_dump()},
                    # Written only where they differ from the defaults, so that other stems plan as before.
                    **({"same": True} if conv.padding == "same" else {}),
                    **({"eps": conv.eps} if conv.eps != 1e-5 else {}),
                )
            )
            cin = conv.channels
            at += count
        pool = None
        if self.pool is not None:
            kernel, stride = self.pool.kernel, self.pool.stride
            padding = kernel // 2 if self.pool.padding is None else self.pool.padding
            x = Shape(cin, grid)
            grid = window_out(grid, kernel, stride, padding, "pool", "the pool")
            detail = f"MaxPool2d {kernel}×{kernel}/{stride}"
            modules = (site.sub(f"conv.{at}"),)
            children.append(layer(site, "pool", "pool", x, Shape(cin, grid), 0, 0, modules, detail))
            pool = dict(kernel=kernel, stride=stride, padding=padding)
        proj = None
        if self.proj is not None:
            padding = self.proj.kernel // 2 if self.proj.padding is None else self.proj.padding
            x = Shape(cin, grid)
            grid = window_out(grid, self.proj.kernel, self.proj.stride, padding, "proj", "the projection")
            bias = self.proj.bias
            children.append(conv_layer(site, "proj", x, Shape(dim, grid), self.proj.kernel, self.proj.stride, bias))
            proj = dict(cin=cin, cout=dim, kernel=self.proj.kernel, stride=self.proj.stride, padding=padding, bias=bias)
        else:
            dim = cin  # the first stage's first block takes the width from here (a ResNet bottleneck does)
        tokens = Shape(dim, grid, tokens=True)
        children.append(self.norm.plan(tokens, child_site(site, "norm")))
        return self.node(site, image, tokens, children=children, layers=layers, pool=pool, proj=proj)

    @staticmethod
    def build(node: Node) -> nn.Module:
        from torch import nn

        from archspec.nn import Stem
        from archspec.nn.init import init_fan_out

        layers: list[nn.Module] = []
        for conv, planned in zip(node.args.layers, node.children, strict=False):
            if conv.get("same") and (conv["stride"] > 1 or conv["kernel"] % 2 == 0):
                from archspec.nn.same_pad import SameConv2d

                layers.append(SameConv2d(conv["cin"], conv["cout"], conv["kernel"], conv["stride"], bias=conv["bias"]))
            else:
                cin, cout, kernel, stride, padding = (conv[k] for k in ("cin", "cout", "kernel", "stride", "padding"))
                layers.append(nn.Conv2d(cin, cout, kernel, stride, padding, bias=conv["bias"]))
            if conv["norm"]:
                layers.append(nn.BatchNorm2d(conv["cout"], eps=conv.get("eps", 1e-5)))
            if (act := conv["act"]) is not None:
                spec = registry.get("act", act["type"]).model_validate(act)
                assert isinstance(spec, ActSpec)
                layers.append(
                    build_node(spec.plan(planned.out_shape, Site(planned.spec_path, planned.module_paths[-1])))
                )
        if (pool := node.args.pool) is not None:
            layers.append(nn.MaxPool2d(pool["kernel"], pool["stride"], pool["padding"]))
        proj = None
        if (p := node.args.proj) is not None:
            proj = nn.Conv2d(p["cin"], p["cout"], p["kernel"], p["stride"], p["padding"], bias=p["bias"])
        return init_fan_out(Stem(nn.Sequential(*layers), proj, build_node(node.child("norm"))))
