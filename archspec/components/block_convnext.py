"""Block ``convnext``: token mixer → norm → FFN → layer scale in one residual branch (ConvNeXt)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from archspec.plan import LAYER_INPUT, BlockInput, Node, PlanProblem, Site, Step, layer, within
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
    layer_scale: float | None = Field(None, gt=0, description="initial value of the branch's per-channel scale")

    def plan(self, given: BlockInput) -> Node:
        tokens, site, stage = given.tokens, given.site, given.stage
        at = site.module_path
        if tokens.channels != given.dim:
            raise PlanProblem(
                (*site.spec_path[:-1], "dim"),
                f"a convnext block keeps the width, but it gets {tokens.channels} channels for a stage of {given.dim}"
                " (give the stage a downsample that changes the width)",
            )
        assert given.mixer is not None  # uses_mixer: the planner refuses a stage without one
        norm_path = (*site.spec_path, "norm")
        ffn_path = (*site.spec_path[:-1], "ffn")
        parts = [
            within(given.mixer_path, given.mixer.plan, tokens, Site(given.mixer_path, f"{at}.m")),
            within(norm_path, self.norm.plan, tokens, Site(norm_path, f"{at}.norm")),
            within(ffn_path, stage.ffn.plan, tokens, Site(ffn_path, f"{at}.mlp")),
        ]
        flow = [Step("m"), Step("norm"), Step("mlp")]
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
        from archspec.nn.convnext_block import ConvNeXtBlock
        from archspec.nn.scale import Scale

        # The mixer, norm and FFN initialise themselves; the layer scale starts at its value.
        a = node.args
        scale = Scale(node.in_shape.channels, a["layer_scale"]) if a["layer_scale"] is not None else None
        return ConvNeXtBlock(
            build_node(node.child("m")),
            build_node(node.child("norm")),
            build_node(node.child("mlp")),
            DropPath(a["drop_path"]) if a["drop_path"] > 0 else nn.Identity(),
            scale,
        )
