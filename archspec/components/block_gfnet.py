"""Block ``gfnet``: norm → token mixer → norm → FFN in one residual branch, added once (GFNet, GFNet-H)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.components._blocks import (
    block_node,
    drop_path,
    keep_width,
    layer_scale_module,
    one_residual,
    plan_parts,
    scale_part,
)
from archspec.plan import BlockInput, Node
from archspec.registry import build_node, register
from archspec.specbase import BlockSpec, NormSpec, Slot, default_component

if TYPE_CHECKING:
    from torch import nn


@register
class GFNetBlockSpec(BlockSpec):
    """GFNet's block: ``x + drop_path(ls(mlp(norm2(m(norm1(x))))))``. There is no shortcut around the
    mixer (usually the ``spectral`` global filter); ``layer_scale`` scales the one branch by a learnable
    vector starting at that value (GFNet-H's ``gamma``)."""

    type: Literal["gfnet"] = "gfnet"
    norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "layernorm", eps=1e-6))
    layer_scale: float | None = Field(None, gt=0, le=10, description="initial value of the branch's per-channel scale")

    def plan(self, given: BlockInput) -> Node:
        keep_width(self, given)
        names = ("norm1", "m", "norm2", "mlp")
        parts = plan_parts(given, self.norm, names)
        if self.layer_scale is not None:
            parts.append(scale_part(given, "ls", self.layer_scale))
        flow = one_residual(names, self.layer_scale)
        return block_node(self, given, parts, flow, layer_scale=self.layer_scale)

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn.gfnet_block import GFNetBlock

        a = node.args
        return GFNetBlock(
            build_node(node.child("norm1")),
            build_node(node.child("m")),
            build_node(node.child("norm2")),
            build_node(node.child("mlp")),
            drop_path(a["drop_path"]),
            layer_scale_module(node),
        )
