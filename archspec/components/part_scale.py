"""Part ``scale``: a learnable per-channel scale, as a layer scale on a branch or a residual scale on a shortcut."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from archspec.nodes import Node, PartInput, PlanProblem
from archspec.registry import register
from archspec.specbase import PartSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class ScalePartArgs:
    """What ``ScalePartSpec.build`` reads from its node."""

    dim: int
    init: float


@register
class ScalePartSpec(PartSpec):
    """Multiplies each channel by a learnable value starting at ``init``: 1e-5 damps a branch at the
    start of training (CaiT's layer scale), 1 weighs a shortcut (MetaFormer's residual scale)."""

    type: Literal["scale"] = "scale"
    build_args = ScalePartArgs
    reads: ClassVar[str] = "tokens"
    example: ClassVar[dict[str, Any]] = {
        "stages.0.block": {
            "type": "flow",
            "parts": {"m": "mixer", "ls": {"type": "scale", "init": 0.5}, "mlp": "ffn"},
            "flow": [["m", "ls", "add"], ["mlp", "add"]],
        },
        "stages.1.block": {"type": "prenorm", "layer_scale": 1e-5},
    }
    init: float = Field(1e-5, gt=0, le=10, description="the scale's starting value")

    def plan(self, given: PartInput) -> Node:
        shape = given.shape
        if not shape.tokens and shape.explicit_dims is None:  # channels last: tokens, or a class token alone
            raise PlanProblem(given.site.spec_path, f"a scale multiplies tokens' channels; it reads a {shape} grid")
        detail = f"× scale, init {self.init:g}"
        return self.node(given.site, shape, shape, shape.channels, 0, dim=shape.channels, init=self.init, detail=detail)

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn.scale import Scale

        return Scale(node.args.dim, node.args.init)
