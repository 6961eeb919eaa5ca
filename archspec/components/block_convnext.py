"""Block ``convnext``: token mixer → norm → FFN → layer scale in one residual branch (ConvNeXt)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from archspec.flow import FlowBlockSpec, Form, part
from archspec.nodes import BlockInput
from archspec.planning import keep_width
from archspec.registry import register
from archspec.slots import Slot, default_component
from archspec.specbase import NormSpec


@register
class ConvNeXtBlockSpec(FlowBlockSpec):
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

    def form(self, given: BlockInput) -> Form:
        keep_width(self, given)
        here = given.site.spec_path
        parts = {name: part(kind, here) for name, kind in (("m", "mixer"), ("norm", "norm"), ("mlp", "ffn"))}
        line = ["m", "norm", "mlp"]
        if self.layer_scale is not None:
            parts["ls"] = part("scale", (*here, "layer_scale"), init=self.layer_scale)
            line.append("ls")
        parts["drop_path"] = part("drop_path", here)
        return Form("ConvNeXtBlock", parts, ((*line, "drop_path", "add"),), here)
