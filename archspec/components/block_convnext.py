"""Block ``convnext``: token mixer → norm → FFN → layer scale in one residual branch (ConvNeXt)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

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
class ConvNeXtBlockSpec(BlockSpec):
    """ConvNeXt's block: ``x + drop_path(ls(mlp(norm(m(x)))))``. The norm comes *after* the mixer (usually
    the ``dwconv`` 7×7 depthwise conv) and nothing follows the addition. ``layer_scale`` scales the
    branch by a learnable vector starting at that value (ConvNeXt's ``gamma``, 1e-6); it is left out by
    default, as in the other blocks, so that ``null`` (which restores a default) can switch it off."""

    type: Literal["convnext"] = "convnext"
    # ConvNeXt's own mixer in both stages of the generated tests' tiny spec, and a layer scale in one of them.
    example: ClassVar[dict[str, Any]] = {
        "stages.0.mixer": {"type": "dwconv"},
        "stages.1.mixer": {"type": "dwconv"},
        "stages.0.block.layer_scale": 1e-6,
    }
    norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "layernorm", eps=1e-6))
    layer_scale: float | None = Field(None, gt=0, le=10, description="initial value of the branch's per-channel scale")

    def plan(self, given: BlockInput) -> Node:
        keep_width(self, given)
        names = ("m", "norm", "mlp")
        parts = plan_parts(given, self.norm, names)
        if self.layer_scale is not None:
            parts.append(scale_part(given, "ls", self.layer_scale))
        flow = one_residual(names, self.layer_scale)
        return block_node(self, given, parts, flow, layer_scale=self.layer_scale)

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn.convnext_block import ConvNeXtBlock

        # The mixer, norm and FFN initialise themselves; the layer scale starts at its value.
        a = node.args
        return ConvNeXtBlock(
            build_node(node.child("m")),
            build_node(node.child("norm")),
            build_node(node.child("mlp")),
            drop_path(a["drop_path"]),
            layer_scale_module(node),
        )
