"""Block ``prenorm``: two pre-norm residual branches, the token mixer then the FFN (ViT, PVT, MetaFormer)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.plan import LAYER_INPUT, BlockInput, Node, PlanProblem, Site, Step, layer, within
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
    layer_scale: float | None = Field(None, gt=0, description="initial value of the per-channel branch scales")
    res_scale: bool = Field(False, description="a learnable per-channel scale on each shortcut")

    def plan(self, given: BlockInput) -> Node:
        tokens, site, stage = given.tokens, given.site, given.stage
        at = site.module_path
        if tokens.channels != given.dim:
            raise PlanProblem(
                (*site.spec_path[:-1], "dim"),
                f"a prenorm block keeps the width, but it gets {tokens.channels} channels for a stage of {given.dim}"
                " (give the stage a downsample that changes the width)",
            )
        assert given.mixer is not None
        norm_path = (*site.spec_path, "norm")
        ffn_path = (*site.spec_path[:-1], "ffn")
        parts = [
            within(norm_path, self.norm.plan, tokens, Site(norm_path, f"{at}.norm1")),
            within(given.mixer_path, given.mixer.plan, tokens, Site(given.mixer_path, f"{at}.m")),
            within(norm_path, self.norm.plan, tokens, Site(norm_path, f"{at}.norm2")),
            within(ffn_path, stage.ffn.plan, tokens, Site(ffn_path, f"{at}.mlp")),
        ]
        flow = [Step("norm1"), Step("m"), Step("add1", add=True, residual=LAYER_INPUT)]
        flow += [Step("norm2"), Step("mlp"), Step("add2", add=True, residual="add1")]
        dim = tokens.channels
        for name, value, after in (("ls1", self.layer_scale, "m"), ("ls2", self.layer_scale, "mlp")):
            if value is not None:
                parts.append(
                    layer(site, "scale", name, tokens, tokens, dim, 0, (f"{at}.{name}",), f"× scale, init {value:g}")
                )
                flow.insert(flow.index(Step(after)) + 1, Step(name))
        if self.res_scale:
            for name in ("res_scale1", "res_scale2"):
                parts.append(layer(site, "scale", name, tokens, tokens, dim, 0, (f"{at}.{name}",), "× shortcut scale"))
            flow = _scaled_shortcuts(flow)
        mixer = given.mixer.type
        return self.node(
            site,
            tokens,
            tokens,
            children=parts,
            drop_path=given.drop_path,
            mixer=mixer,
            ffn=stage.ffn.type,
            layer_scale=self.layer_scale,
            res_scale=self.res_scale,
            flow=flow,
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from torch import nn

        from archspec.nn import Block, DropPath
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
            DropPath(a["drop_path"]) if a["drop_path"] > 0 else nn.Identity(),
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
