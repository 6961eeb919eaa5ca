"""Downsamples ``maxpool`` and ``avgpool``: a pooling window, a 1×1 conv if the width changes, a norm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from archspec.nodes import Node, PlanProblem, Shape, Site, layer
from archspec.planning import child_site, conv_layer, window_out
from archspec.registry import build_node, register
from archspec.slots import Slot, default_component
from archspec.specbase import DownsampleSpec, NormSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class PoolDownsampleArgs:
    """What ``build`` reads from the node a pooling downsample plans."""

    cin: int
    dim: int
    kernel: int
    stride: int
    padding: int
    project: bool
    pool: str


class _PoolDownsampleSpec(DownsampleSpec):
    """``stride`` defaults to ``kernel``."""

    pool_class: ClassVar[str]
    build_args = PoolDownsampleArgs
    kernel: int = Field(2, ge=1, le=255)
    stride: int | None = Field(None, ge=1, le=64)
    padding: int = Field(0, ge=0, le=127)
    norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "layernorm", eps=1e-5))

    def plan(self, grid: Shape, dim: int, site: Site) -> Node:
        assert grid.grid is not None
        stride = self.stride or self.kernel
        if 2 * self.padding > self.kernel:
            raise PlanProblem("padding", f"padding {self.padding} is more than half the kernel {self.kernel}")
        out = window_out(grid.grid, self.kernel, stride, self.padding, (), "the pooling window")
        project = grid.channels != dim
        pooled, tokens = Shape(grid.channels, out), Shape(dim, out, tokens=True)
        detail = f"{self.pool_class} {self.kernel}×{self.kernel}/{stride}"
        layers = [layer(site, "pool", "pool", grid, pooled, modules=(site.sub("pool"),), detail=detail)]
        if project:
            layers.append(conv_layer(site, "proj", pooled, Shape(dim, out), 1))
        layers.append(self.norm.plan(tokens, child_site(site, "norm")))
        return self.node(
            site,
            grid,
            tokens,
            children=layers,
            cin=grid.channels,
            dim=dim,
            kernel=self.kernel,
            stride=stride,
            padding=self.padding,
            project=project,
            pool=self.pool_class,
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from torch import nn

        from archspec.nn import PoolDownsample
        from archspec.nn.init import init_fan_out

        a = node.args
        pool = getattr(nn, a.pool)(a.kernel, a.stride, a.padding)
        proj = init_fan_out(nn.Conv2d(a.cin, a.dim, 1)) if a.project else None
        return PoolDownsample(pool, proj, build_node(node.child("norm")))


@register
class MaxPoolDownsampleSpec(_PoolDownsampleSpec):
    type: Literal["maxpool"] = "maxpool"
    pool_class: ClassVar[str] = "MaxPool2d"


@register
class AvgPoolDownsampleSpec(_PoolDownsampleSpec):
    type: Literal["avgpool"] = "avgpool"
    pool_class: ClassVar[str] = "AvgPool2d"
