"""Mixer ``pool``: PoolFormer's token mixer, a k×k average over each token's neighbours minus the token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from archspec.nodes import Node, Shape, Site, layer
from archspec.planning import needs_grid, odd_kernel
from archspec.registry import register
from archspec.specbase import MixerSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class PoolMixerArgs:
    """What ``PoolMixerSpec.build`` reads from its node."""

    kernel: int


@register
class PoolMixerSpec(MixerSpec):
    """Average pooling with stride 1 and padding ``kernel // 2`` (padding left out of the means),
    minus the input: the block's shortcut adds the input back. No parameters, no FLOPs (pooling and
    subtraction are not counted)."""

    type: Literal["pool"] = "pool"
    build_args = PoolMixerArgs
    colour = "#e2f0cb"
    kernel: int = Field(3, ge=1, le=63, description="the pooling window (odd)")

    _odd = field_validator("kernel")(odd_kernel)

    def plan(self, tokens: Shape, site: Site) -> Node:
        needs_grid(tokens, "pooling")
        k = self.kernel
        pool = layer(site, "pool", "pool", tokens, tokens, detail=f"AvgPool {k}×{k}/1 − x", title="pool − x")
        return self.node(site, tokens, tokens, children=(pool,), kernel=k)

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn.pool_mixer import PoolMixer

        return PoolMixer(node.args.kernel)
