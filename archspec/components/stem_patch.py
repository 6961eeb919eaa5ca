"""Stem ``patch``: non-overlapping patches (one conv, kernel = stride = patch) and a LayerNorm."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.components._common import conv_layer, norm_layer, window_out
from archspec.plan import Node, Shape, Site
from archspec.registry import register
from archspec.specbase import StemSpec

if TYPE_CHECKING:
    from torch import nn


@register
class PatchStemSpec(StemSpec):
    type: Literal["patch"] = "patch"
    patch: int = Field(4, ge=1)
    norm_eps: float = Field(1e-5, gt=0)

    def plan(self, image: Shape, dim: int, site: Site) -> Node:
        assert image.grid is not None
        grid = window_out(image.grid, self.patch, self.patch, 0, "patch", "the patch")
        tokens = Shape(dim, grid, tokens=True)
        proj = conv_layer(site, "proj", image, Shape(dim, grid), self.patch, self.patch)
        return self.node(
            site,
            image,
            tokens,
            children=(proj, norm_layer(site, "norm", tokens)),
            cin=image.channels,
            dim=dim,
            patch=self.patch,
            eps=self.norm_eps,
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from torch import nn

        from archspec.nn import PatchEmbed

        a = node.args
        return PatchEmbed(nn.Conv2d(a["cin"], a["dim"], a["patch"], a["patch"]), nn.LayerNorm(a["dim"], eps=a["eps"]))
