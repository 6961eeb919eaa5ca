"""Norm ``batchnorm``: per-channel statistics over the batch and the grid, kept as running averages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.nodes import Node, Shape, Site
from archspec.registry import register
from archspec.specbase import NormSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class BatchNormArgs:
    """What ``BatchNormSpec.build`` reads from its node."""

    dim: int
    eps: float
    momentum: float
    grid: bool


@register
class BatchNormSpec(NormSpec):
    type: Literal["batchnorm"] = "batchnorm"
    build_args = BatchNormArgs
    eps: float = Field(1e-5, gt=0, lt=1)
    momentum: float = Field(0.1, gt=0, le=1)

    def plan(self, shape: Shape, site: Site) -> Node:
        dim = shape.channels
        detail = f"BatchNorm, eps {self.eps:g}"
        return self.node(
            site,
            shape,
            shape,
            2 * dim,
            0,
            dim=dim,
            eps=self.eps,
            momentum=self.momentum,
            grid=shape.grid is not None and not shape.tokens,
            detail=detail,
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from torch import nn

        from archspec.nn.norm import TokenBatchNorm

        a = node.args
        return (nn.BatchNorm2d if a.grid else TokenBatchNorm)(a.dim, eps=a.eps, momentum=a.momentum)
