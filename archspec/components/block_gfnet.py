"""Block ``gfnet``: norm → token mixer → norm → FFN in one residual branch, added once (GFNet, GFNet-H)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.plan import LAYER_INPUT, BlockInput, Node, PlanProblem, Site, Step, layer, within
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
    layer_scale: float | None = Field(None, gt=0, description="initial value of the branch's per-channel scale")

    def plan(self, given: BlockInput) -> Node:
        tokens, site, stage = given.tokens, given.site, given.stage
        at = site.module_path
        if tokens.channels != given.dim:
            raise PlanProblem(
                (*site.spec_path[:-1], "dim"),
                f"a gfnet block keeps the width, but it gets {tokens.channels} channels for a stage of {given.dim}"
                " (give the stage a downsample that changes the width)",
            )
        assert given.mixer is not None  # uses_mixer: the planner refuses a stage without one
        norm_path = (*site.spec_path, "norm")
        ffn_path = (*site.spec_path[:-1], "ffn")
        parts = [
            within(norm_path, self.norm.plan, tokens, Site(norm_path, f"{at}.norm1")),
            within(given.mixer_path, given.mixer.plan, tokens, Site(given.mixer_path, f"{at}.m")),
            within(norm_path, self.norm.plan, tokens, Site(norm_path, f"{at}.norm2")),
            within(ffn_path, stage.ffn.plan, tokens, Site(ffn_path, f"{at}.mlp")),
        ]
        flow = [Step("norm1"), Step("m"), Step("norm2"), Step("mlp")]
        if self.layer_scale is not None:
            # An elementwise product: no FLOPs, as the counter sees it.
            detail = f"× scale, init {self.layer_scale:g}"
            parts.append(layer(site, "scale", "ls", tokens, tokens, tokens.channels, 0, (f"{at}.ls",), detail))
            flow.append(Step("ls"))
        flow.append(Step("add", add=True, residual=LAYER_INPUT))
        return self.node(
            site,
            tokens,
            tokens,
            children=parts,
            drop_path=given.drop_path,
            mixer=given.mixer.type,
            ffn=stage.ffn.type,
            layer_scale=self.layer_scale,
            flow=flow,
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from torch import nn

        from archspec.nn import DropPath
        from archspec.nn.gfnet_block import GFNetBlock
        from archspec.nn.scale import Scale

        a = node.args
        scale = Scale(node.in_shape.channels, a["layer_scale"]) if a["layer_scale"] is not None else None
        return GFNetBlock(
            build_node(node.child("norm1")),
            build_node(node.child("m")),
            build_node(node.child("norm2")),
            build_node(node.child("mlp")),
            DropPath(a["drop_path"]) if a["drop_path"] > 0 else nn.Identity(),
            scale,
        )
