"""FFN ``mlp``: fc1 → activation (→ norm) → fc2, with optional dropout."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.nodes import Node, Shape, Site
from archspec.planning import child_site, hidden_width, linear_layer
from archspec.registry import build_node, register
from archspec.slots import Slot, default_component
from archspec.specbase import ActSpec, FfnSpec, NormSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class MlpFfnArgs:
    """What ``MlpFfnSpec.build`` reads from its node."""

    dim: int
    hidden: int
    bias: bool
    drop: float


@register
class MlpFfnSpec(FfnSpec):
    type: Literal["mlp"] = "mlp"
    build_args = MlpFfnArgs
    ratio: float = Field(4.0, gt=0, le=64, description="hidden width = dim × ratio")
    act: Slot[ActSpec] = Field(default_factory=default_component("act", "gelu"))
    bias: bool = True
    drop: float = Field(0.0, ge=0, lt=1, description="dropout after the activation and after fc2")
    norm: Slot[NormSpec] | None = Field(
        None, description="a norm of the hidden tokens, between the activation and fc2 (ConvNeXt-V2: grn)"
    )

    def plan(self, tokens: Shape, site: Site) -> Node:
        dim = tokens.channels
        hidden = hidden_width(dim, self.ratio, "ratio")
        fc1 = linear_layer(site, "fc1", tokens, hidden, self.bias)
        act = self.act.plan(fc1.out_shape, child_site(site, "act"))
        norm = [] if self.norm is None else [self.norm.plan(act.out_shape, child_site(site, "norm"))]
        fc2 = linear_layer(site, "fc2", act.out_shape, dim, self.bias)
        return self.node(
            site,
            tokens,
            tokens,
            children=(fc1, act, *norm, fc2),
            dim=dim,
            hidden=hidden,
            bias=self.bias,
            drop=self.drop,
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn import FFN
        from archspec.nn.init import init_trunc_normal

        a = node.args
        norm = build_node(node.child("norm")) if any(child.name == "norm" for child in node.children) else None
        return init_trunc_normal(FFN(a.dim, a.hidden, build_node(node.child("act")), a.bias, a.drop, norm))
