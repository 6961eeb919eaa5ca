"""Head ``token``: read the class token in front of the last stage's tokens, after its norm (ViT, DeiT)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from archspec.nodes import HeadSteps, Node, PlanProblem, Shape, Site, layer
from archspec.planning import linear_layer
from archspec.registry import register
from archspec.specbase import HeadSpec

if TYPE_CHECKING:
    from torch import nn

    from archspec.nn.backbone import Body


@dataclass(frozen=True)
class TokenHeadArgs:
    """What ``TokenHeadSpec.build`` reads from its node."""

    dim: int
    num_classes: int
    drop: float


@register
class TokenHeadSpec(HeadSpec):
    type: Literal["token"] = "token"
    build_args = TokenHeadArgs
    example: ClassVar[dict[str, Any]] = {
        "stem.cls_token": True,
        "stages": [{"dim": 8, "depth": 2, "mixer": {"type": "attention", "heads": 2}}],  # one stage keeps the token
    }
    drop: float = Field(0.0, ge=0, lt=1, description="dropout before the classifier")

    def plan(self, tokens: Shape, num_classes: int, site: Site) -> Node:
        if not tokens.prefix:
            raise PlanProblem("type", "the token head reads a class token; give the stem 'cls_token: true'")
        dim = tokens.channels
        read = layer(site, "select", "cls", tokens, Shape(dim), detail="class token")
        head = linear_layer(site, "head", read.out_shape, num_classes, module="head", reads="class token")
        return self.node(
            site, tokens, head.out_shape, children=(read, head), dim=dim, num_classes=num_classes, drop=self.drop
        )

    @staticmethod
    def steps(node: Node) -> HeadSteps:
        return HeadSteps("cls")  # the model is head(norm(x[:, 0]))

    @staticmethod
    def build_model(node: Node, body: Body) -> nn.Module:
        from torch import nn

        from archspec.nn.heads import TokenModel
        from archspec.nn.init import init_trunc_normal

        a = node.args
        return TokenModel(body, init_trunc_normal(nn.Linear(a.dim, a.num_classes)), a.drop)
