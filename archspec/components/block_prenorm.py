"""Block ``prenorm``: two pre-norm residual branches, the token mixer then the FFN (ViT, PVT, MetaFormer)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.components._blocks import block_node, drop_path, keep_width, plan_parts, scale_part
from archspec.plan import LAYER_INPUT, BlockInput, Node, Step
from archspec.registry import build_node, register
from archspec.specbase import BlockSpec, NormSpec, Slot, default_component

if TYPE_CHECKING:
    from torch import nn


@register
class PrenormBlockSpec(BlockSpec):
    """``layer_scale`` scales each branch by a learnable vector starting at that value (CaiT, MetaFormer);
    ``res_scale`` adds a learnable per-channel scale, starting at 1, on each shortcut (MetaFormer v2)."""

    type: Literal["prenorm"] = "prenorm"
    norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "layernorm"))
    layer_scale: float | None = Field(None, gt=0, le=10, description="initial value of the per-channel branch scales")
    res_scale: bool = Field(False, description="a learnable per-channel scale on each shortcut")

    def plan(self, given: BlockInput) -> Node:
        keep_width(self, given)
        parts = plan_parts(given, self.norm, ("norm1", "m", "norm2", "mlp"))
        flow = [Step("norm1"), Step("m"), Step("add1", add=True, residual=LAYER_INPUT)]
        flow += [Step("norm2"), Step("mlp"), Step("add2", add=True, residual="add1")]
        if self.layer_scale is not None:
            for name, after in (("ls1", "m"), ("ls2", "mlp")):
                parts.append(scale_part(given, name, self.layer_scale))
                flow.insert(flow.index(Step(after)) + 1, Step(name))
        if self.res_scale:
            parts += [scale_part(given, name, 1.0, "shortcut scale") for name in ("res_scale1", "res_scale2")]
            flow = _scaled_shortcuts(flow)
        return block_node(self, given, parts, flow, layer_scale=self.layer_scale, res_scale=self.res_scale)

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn import Block
        from archspec.nn.scale import Scale

        a = node.args
        names = {child.name for child in node.children}
        dim = node.in_shape.channels

        def scale(name: str, init: float | None) -> nn.Module | None:
            return Scale(dim, init if init is not None else 1.0) if name in names else None

        return Block(
            build_node(node.child("m")),
            build_node(node.child("norm1")),
            build_node(node.child("norm2")),
            build_node(node.child("mlp")),
            drop_path(a["drop_path"]),
            scale("ls1", a["layer_scale"]),
            scale("ls2", a["layer_scale"]),
            scale("res_scale1", 1.0),
            scale("res_scale2", 1.0),
        )


def _scaled_shortcuts(flow: list[Step]) -> list[Step]:
    """Send each shortcut through its residual scale: ``add1`` adds ``res_scale1(x)``, ``add2`` ``res_scale2(add1)``."""
    result = []
    for step in flow:
        if step.name == "add1":
            result += [
                Step("res_scale1", after=(LAYER_INPUT,)),
                Step("add1", after=(_before(flow, step),), add=True, residual="res_scale1"),
            ]
        elif step.name == "add2":
            result += [
                Step("res_scale2", after=("add1",)),
                Step("add2", after=(_before(flow, step),), add=True, residual="res_scale2"),
            ]
        else:
            result.append(step)
    return result


def _before(flow: list[Step], step: Step) -> str:
    return flow[flow.index(step) - 1].name
