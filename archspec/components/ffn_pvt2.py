"""FFN ``pvt2``: fc1 → 3×3 depthwise conv on the token grid → activation → fc2."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.components.part_se import SePartSpec
from archspec.nodes import Node, Shape, Site
from archspec.planning import child_site, conv_layer, hidden_width, linear_layer, needs_grid
from archspec.registry import build_node, register
from archspec.slots import Slot, default_component
from archspec.specbase import ActSpec, FfnSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class Pvt2FfnArgs:
    """What ``Pvt2FfnSpec.build`` reads from its node."""

    dim: int
    hidden: int
    drop: float


@register
class Pvt2FfnSpec(FfnSpec):
    type: Literal["pvt2"] = "pvt2"
    build_args = Pvt2FfnArgs
    ratio: float = Field(4.0, gt=0, le=64, description="hidden width = dim × ratio")
    act: Slot[ActSpec] = Field(default_factory=default_component("act", "gelu"))
    drop: float = Field(0.0, ge=0, lt=1, description="dropout after the activation and after fc2")
    se: SePartSpec | None = Field(None, description="squeeze-excitation of the hidden tokens, before fc2")

    def plan(self, tokens: Shape, site: Site) -> Node:
        needs_grid(tokens, "the pvt2 FFN's depthwise conv")
        dim = tokens.channels
        hidden = hidden_width(dim, self.ratio, "ratio")
        fc1 = linear_layer(site, "fc1", tokens, hidden)
        wide = fc1.out_shape  # the hidden tokens, laid out on their grid for the depthwise conv
        detail = f"Conv2d 3×3 depthwise, {hidden}"
        dwconv = conv_layer(site, "dwconv", wide, wide, 3, groups=hidden, detail=detail)
        act = self.act.plan(wide, child_site(site, "act"))
        se = [] if self.se is None else [self.se.plan_on(wide, child_site(site, "se"))]
        fc2 = linear_layer(site, "fc2", wide, dim)
        layers = (fc1, dwconv, act, *se, fc2)
        return self.node(site, tokens, tokens, children=layers, dim=dim, hidden=hidden, drop=self.drop)

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn import PVT2FFN
        from archspec.nn.init import init_fan_out, init_trunc_normal

        a = node.args
        se = build_node(node.child("se")) if any(child.name == "se" for child in node.children) else None
        module = PVT2FFN(a.dim, a.hidden, build_node(node.child("act")), drop=a.drop, se=se)
        return init_fan_out(init_trunc_normal(module))
