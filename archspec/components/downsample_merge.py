"""Downsample ``merge``: Swin's patch merging, each 2×2 neighbourhood of cells concatenated into one token
(4× the channels), a norm over them and a Linear to the stage's width."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.nodes import Node, PlanProblem, Shape, Site
from archspec.planning import child_site, linear_layer
from archspec.registry import build_node, register
from archspec.slots import Slot, default_component
from archspec.specbase import DownsampleSpec, NormSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class MergeDownsampleArgs:
    """What ``MergeDownsampleSpec.build`` reads from its node."""

    cin: int
    dim: int
    bias: bool


@register
class MergeDownsampleSpec(DownsampleSpec):
    """Halves the grid (an odd side is padded to even first) and goes from C to 4·C channels, which
    ``norm`` normalises and a Linear (``reduction``) takes to the stage's width."""

    type: Literal["merge"] = "merge"
    build_args = MergeDownsampleArgs
    norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "layernorm", eps=1e-5))
    bias: bool = Field(False, description="whether the reduction Linear has a bias")

    def plan(self, grid: Shape, dim: int, site: Site) -> Node:
        assert grid.grid is not None
        if 1 in grid.grid:
            raise PlanProblem(
                (),
                f"patch merging meets a {grid.grid[0]}×{grid.grid[1]} grid: it cannot halve a side of one cell "
                "(use a larger input or fewer downsamples)",
            )
        out = ((grid.grid[0] + 1) // 2, (grid.grid[1] + 1) // 2)
        merged = Shape(4 * grid.channels, out, tokens=True)
        parts = (
            self.norm.plan(merged, child_site(site, "norm")),
            linear_layer(site, "reduction", merged, dim, self.bias),
        )
        tokens = Shape(dim, out, tokens=True)
        detail = f"2×2 cells, {4 * grid.channels}→{dim}"
        return self.node(site, grid, tokens, children=parts, detail=detail, cin=grid.channels, dim=dim, bias=self.bias)

    @staticmethod
    def build(node: Node) -> nn.Module:
        from torch import nn

        from archspec.nn.init import init_trunc_normal
        from archspec.nn.patch_merging import PatchMerging

        a = node.args
        reduction = init_trunc_normal(nn.Linear(4 * a.cin, a.dim, bias=a.bias))
        return PatchMerging(build_node(node.child("norm")), reduction)
