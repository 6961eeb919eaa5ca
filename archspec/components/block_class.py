"""Block ``class``: CaiT's class-attention block, which updates the class token and passes the others through."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from archspec.flow import Combine, FlowBlockSpec, Form, Line, part
from archspec.nodes import BlockInput
from archspec.planning import keep_width
from archspec.registry import register
from archspec.slots import Slot, default_component
from archspec.specbase import NormSpec


@register
class ClassBlockSpec(FlowBlockSpec):
    """``cls = cls + m(norm1(tokens))``, then ``cls = cls + mlp(norm2(cls))``, and the class token goes
    back in front of the tokens, which pass through unchanged. The mixer is usually ``class_attention``
    (the query from the class token only); SpectFormer-H's ``class_attention`` head runs these blocks.
    ``layer_scale`` scales each branch by a learnable vector starting at that value (CaiT)."""

    type: Literal["class"] = "class"
    example: ClassVar[dict[str, Any]] = {  # class tokens to read: a one-stage ViT whose stage is class blocks
        "stem": {"type": "patch", "patch": 4, "cls_token": True},
        "stages": [{"dim": 8, "depth": 1, "mixer": {"type": "class_attention"}, "ffn": {"type": "mlp"},
                    "block": {"type": "class"}}],
        "head": {"type": "token"},
    }  # fmt: skip
    norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "layernorm", eps=1e-6))
    layer_scale: float | None = Field(None, gt=0, le=10, description="initial value of the per-channel branch scales")

    def form(self, given: BlockInput) -> Form:
        keep_width(self, given)
        here = given.site.spec_path
        kinds = (("norm1", "norm"), ("norm2", "norm"), ("attn", "mixer"), ("mlp", "ffn"))
        parts = {name: part(kind, here) for name, kind in kinds}
        branches: list[list[str]] = [["norm1", "attn"], ["norm2", "mlp"]]
        if self.layer_scale is not None:  # CaiT scales both branches of its class-attention blocks
            for index, branch in enumerate(branches, 1):
                parts[f"ls{index}"] = part("scale", (*here, "layer_scale"), init=self.layer_scale)
                branch.append(f"ls{index}")
        lines: tuple[Line, ...] = ((*branches[0], Combine(add="class_token")), (*branches[1], "add"), ("rejoin",))
        return Form("ClassBlock", parts, lines, here)
