"""Part ``linear``: a Linear layer over the channels of tokens (a projection after ``concat``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from archspec.flops import linear_flops
from archspec.nodes import Node, PartInput, PlanProblem
from archspec.registry import register
from archspec.specbase import PartSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class LinearPartArgs:
    """What ``LinearPartSpec.build`` reads from its node."""

    cin: int
    cout: int
    bias: bool


@register
class LinearPartSpec(PartSpec):
    """Maps each token's channels to ``out`` channels (the block's width when left out)."""

    type: Literal["linear"] = "linear"
    build_args = LinearPartArgs
    reads: ClassVar[str] = "tokens"
    example: ClassVar[dict[str, Any]] = {
        "stages.0.block": {
            "type": "flow",
            "parts": {
                "a": "mixer",
                "b": {"type": "mixer", "mixer": "identity"},
                "wide": {"type": "linear", "out": 12},
                "proj": "linear",
                "mlp": "ffn",
            },
            "flow": [[{"concat": [["a"], ["b"]]}, "wide", "proj", "add"], ["mlp", "add"]],
        }
    }
    out: int | None = Field(None, ge=1, le=1 << 16, description="output channels; the block's width when left out")
    bias: bool = True

    def plan(self, given: PartInput) -> Node:
        shape = given.shape
        if not shape.tokens:
            raise PlanProblem(given.site.spec_path, f"a linear part reads tokens, not a {shape} grid")
        cin, cout = shape.channels, self.out if self.out is not None else given.block.dim
        flops = linear_flops(shape.dims[0], cin, cout)
        detail = f"Linear {cin}→{cout}"
        params = cin * cout + cout * self.bias
        return self.node(
            given.site,
            shape,
            shape.with_channels(cout),
            params,
            flops,
            cin=cin,
            cout=cout,
            bias=self.bias,
            detail=detail,
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from torch import nn

        from archspec.nn.init import init_trunc_normal

        a = node.args
        return init_trunc_normal(nn.Linear(a.cin, a.cout, bias=a.bias))
