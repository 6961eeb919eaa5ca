"""Block ``gfnet``: norm → token mixer → norm → FFN in one residual branch, added once (GFNet, GFNet-H)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from archspec.flow import FlowBlockSpec, Form, part
from archspec.nodes import BlockInput
from archspec.planning import keep_width
from archspec.registry import register
from archspec.slots import Slot, default_component
from archspec.specbase import NormSpec


@register
class GFNetBlockSpec(FlowBlockSpec):
    """GFNet's block: ``x + drop_path(ls(mlp(norm2(m(norm1(x))))))``. There is no shortcut around the
    mixer (usually the ``spectral`` global filter); ``layer_scale`` scales the one branch by a learnable
    vector starting at that value (GFNet-H's ``gamma``)."""

    type: Literal["gfnet"] = "gfnet"
    norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "layernorm", eps=1e-6))
    layer_scale: float | None = Field(None, gt=0, le=10, description="initial value of the branch's per-channel scale")

    def form(self, given: BlockInput) -> Form:
        keep_width(self, given)
        here = given.site.spec_path
        kinds = (("norm1", "norm"), ("m", "mixer"), ("norm2", "norm"), ("mlp", "ffn"), ("drop_path", "drop_path"))
        parts = {name: part(kind, here) for name, kind in kinds}
        line = ["norm1", "m", "norm2", "mlp"]
        if self.layer_scale is not None:
            parts["ls"] = part("scale", (*here, "layer_scale"), init=self.layer_scale)
            line.append("ls")
        return Form("GFNetBlock", parts, ((*line, "drop_path", "add"),), here)
