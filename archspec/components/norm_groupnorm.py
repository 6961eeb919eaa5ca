"""Norm ``groupnorm``: per-sample statistics over groups of channels and the grid (PoolFormer uses one group)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.nodes import Node, PlanProblem, Shape, Site
from archspec.registry import register
from archspec.specbase import NormSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class GroupNormArgs:
    """What ``GroupNormSpec.build`` reads from its node."""

    dim: int
    groups: int
    eps: float
    bias: bool
    grid: bool


@register
class GroupNormSpec(NormSpec):
    type: Literal["groupnorm"] = "groupnorm"
    build_args = GroupNormArgs
    groups: int = Field(1, ge=1, le=65_536)
    eps: float = Field(1e-5, gt=0, lt=1)
    bias: bool = True

    def plan(self, shape: Shape, site: Site) -> Node:
        dim = shape.channels
        if dim % self.groups:
            raise PlanProblem("groups", f"{self.groups} groups do not divide {dim} channels")
        if shape.prefix:
            raise PlanProblem("type", "groupnorm needs a plain grid of tokens, without a class token")
        detail = f"GroupNorm, {self.groups} group{'s' * (self.groups > 1)}, eps {self.eps:g}"
        return self.node(
            site,
            shape,
            shape,
            dim * (1 + self.bias),
            0,
            dim=dim,
            groups=self.groups,
            eps=self.eps,
            bias=self.bias,
            grid=shape.grid is not None and not shape.tokens,
            detail=detail,
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn.norm import GroupNorm, TokenGroupNorm

        a = node.args
        return (GroupNorm if a.grid else TokenGroupNorm)(a.groups, a.dim, a.eps, a.bias)
