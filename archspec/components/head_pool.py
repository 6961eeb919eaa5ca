"""Head ``pool``: average the last stage's tokens, normalise, then a Linear classifier or a one-hidden-layer MLP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.nodes import HeadSteps, Node, Shape, Site, layer
from archspec.planning import hidden_width, linear_layer
from archspec.registry import build_node, register
from archspec.slots import Slot, default_component
from archspec.specbase import ActSpec, HeadSpec, NormSpec, StrictModel

if TYPE_CHECKING:
    from torch import nn

    from archspec.nn.backbone import Body


class MlpHeadSpec(StrictModel):
    """fc1 (width × ``ratio``) → act → norm → fc2 (classes)."""

    ratio: float = Field(4.0, gt=0, le=64)
    act: Slot[ActSpec] = Field(default_factory=default_component("act", "gelu"))
    norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "layernorm", eps=1e-5))


@dataclass(frozen=True)
class PoolHeadArgs:
    """What ``PoolHeadSpec.build`` reads from its node."""

    dim: int
    num_classes: int
    norm: str
    hidden: int | None
    drop: float


@register
class PoolHeadSpec(HeadSpec):
    """``norm`` says where the last stage's norm goes: ``after_pool`` (on the mean token) or
    ``before_pool`` (on every token, then the mean)."""

    type: Literal["pool"] = "pool"
    build_args = PoolHeadArgs
    norm: Literal["after_pool", "before_pool"] = "after_pool"
    mlp: MlpHeadSpec | None = None
    drop: float = Field(0.0, ge=0, lt=1, description="dropout before the classifier")

    def plan(self, tokens: Shape, num_classes: int, site: Site) -> Node:
        dim = tokens.channels
        pool = layer(site, "pool", "pool", tokens, Shape(dim), detail="mean over tokens")
        parts = [pool]
        hidden = None
        if self.mlp is None:
            parts.append(linear_layer(site, "head", pool.out_shape, num_classes, module="head", reads="pooled"))
        else:
            hidden = hidden_width(dim, self.mlp.ratio, "mlp.ratio")
            fc1 = linear_layer(site, "fc1", pool.out_shape, hidden, module="head.fc1", reads="pooled")
            act = self.mlp.act.plan(fc1.out_shape, Site((*site.spec_path, "mlp", "act"), "head.act"))
            norm = self.mlp.norm.plan(fc1.out_shape, Site((*site.spec_path, "mlp", "norm"), "head.norm"))
            parts += [fc1, act, norm, linear_layer(site, "fc2", fc1.out_shape, num_classes, module="head.fc2")]
        return self.node(
            site,
            tokens,
            Shape(num_classes),
            children=parts,
            dim=dim,
            num_classes=num_classes,
            norm=self.norm,
            hidden=hidden,
            drop=self.drop,
        )

    @staticmethod
    def steps(node: Node) -> HeadSteps:
        # The model is head(norm(mean(x))), or head(mean(norm(x))) with ``norm: before_pool``.
        return HeadSteps("pool" if node.args.norm == "after_pool" else None)

    @staticmethod
    def build_model(node: Node, body: Body) -> nn.Module:
        from torch import nn

        from archspec.nn.heads import MlpHead, PoolModel
        from archspec.nn.init import init_trunc_normal

        a = node.args
        head: nn.Module
        if a.hidden is None:
            head = nn.Linear(a.dim, a.num_classes)
        else:
            act, norm = build_node(node.child("act")), build_node(node.child("norm"))
            head = MlpHead(nn.Linear(a.dim, a.hidden), act, norm, nn.Linear(a.hidden, a.num_classes))
        return PoolModel(body, init_trunc_normal(head), a.norm == "before_pool", a.drop)
