"""Block ``prenorm``: two pre-norm residual branches, the token mixer then the FFN (ViT, PVT, MetaFormer)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from archspec.flow import Combine, FlowBlockSpec, Form, Line, part
from archspec.nodes import BlockInput
from archspec.planning import keep_width
from archspec.registry import register
from archspec.slots import Slot, default_component
from archspec.specbase import NormSpec


@register
class PrenormBlockSpec(FlowBlockSpec):
    """``x + drop_path(m(norm1(x)))``, then ``x + drop_path(mlp(norm2(x)))``. ``layer_scale`` scales each
    branch by a learnable vector starting at that value (CaiT, MetaFormer); ``res_scale`` adds a learnable
    per-channel scale, starting at 1, on each shortcut (MetaFormer v2)."""

    type: Literal["prenorm"] = "prenorm"
    norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "layernorm"))
    layer_scale: float | None = Field(None, gt=0, le=10, description="initial value of the per-channel branch scales")
    res_scale: bool = Field(False, description="a learnable per-channel scale on each shortcut")

    def form(self, given: BlockInput) -> Form:
        keep_width(self, given)
        here = given.site.spec_path
        parts = {name: part(kind, here) for name, kind in (("m", "mixer"), ("norm1", "norm"), ("norm2", "norm"))}
        parts |= {"mlp": part("ffn", here), "drop_path": part("drop_path", here)}
        lines: list[Line] = []
        for index, (norm, inner) in enumerate((("norm1", "m"), ("norm2", "mlp")), 1):
            line: list[str] = [norm, inner]
            if self.layer_scale is not None:
                parts[f"ls{index}"] = part("scale", (*here, "layer_scale"), init=self.layer_scale)
                line.append(f"ls{index}")
            lines.append((*line, "drop_path", "add"))
        if self.res_scale:
            for index in (1, 2):
                parts[f"res_scale{index}"] = part("scale", (*here, "res_scale"), init=1.0)
            lines = [(*line[:-1], Combine(add=f"res_scale{index}")) for index, line in enumerate(lines, 1)]
        return Form("Block", parts, tuple(lines), here)
