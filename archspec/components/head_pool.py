"""Head ``pool``: an optional 1×1 conv head, the mean of the last stage's tokens, a norm, then a Linear
classifier or a one-hidden-layer MLP."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from archspec.nodes import HeadSteps, Node, PlanProblem, Shape, Site, layer
from archspec.planning import conv_layer, hidden_width, linear_layer
from archspec.registry import build_node, register
from archspec.slots import Slot, default_component
from archspec.specbase import ActSpec, HeadSpec, NormSpec, StrictModel

if TYPE_CHECKING:
    from torch import nn

    from archspec.nn.backbone import Body


class MlpHeadSpec(StrictModel):
    """fc1 (width × ``ratio``, or ``hidden``) → act → norm → fc2 (classes).

    ``features`` says what the model gives without its classifier (``reset_classifier(0)``,
    ``num_classes=0``, ``forward_head(pre_logits=True)``): the ``pooled`` vector, the whole MLP being
    the classifier (MetaFormer's head), or the ``hidden`` layer's output, fc2 alone being the
    classifier (MobileNetV3's conv head, MaxViT's pre-logits layer), with ``drop`` then before fc2.
    """

    ratio: float | None = Field(None, gt=0, le=64, description="fc1's width / input width (4 unless hidden is given)")
    hidden: int | None = Field(None, ge=1, le=1 << 16, description="fc1's width, instead of ratio")
    act: Slot[ActSpec] = Field(default_factory=default_component("act", "gelu"))
    norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "layernorm", eps=1e-5))
    features: Literal["pooled", "hidden"] = Field(
        "pooled", description="what comes out without a classifier: the pooled vector, or fc1 → act → norm's output"
    )

    @model_validator(mode="after")
    def _one_width(self) -> MlpHeadSpec:
        if self.hidden is not None and self.ratio is not None:
            raise ValueError("give fc1's width as ratio or as hidden, not both")
        return self


class ConvHeadSpec(StrictModel):
    """A 1×1 conv to ``channels``, a norm and an activation on every token, before the mean
    (EfficientNet's and MobileNetV2's ``conv_head``, ``bn2``)."""

    channels: int = Field(ge=1, le=1 << 16, description="the conv's output width")
    bias: bool = False
    norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "batchnorm"))
    act: Slot[ActSpec] = Field(default_factory=default_component("act", "relu"))


@dataclass(frozen=True)
class PoolHeadArgs:
    """What ``PoolHeadSpec.build`` reads from its node."""

    dim: int
    num_classes: int
    norm: str
    hidden: int | None
    hidden_features: bool
    """Whether the hidden layer stays when the classifier goes (``mlp.features: hidden``)."""
    drop: float
    conv: dict[str, int | bool] | None


@register
class PoolHeadSpec(HeadSpec):
    """``norm`` says where the last stage's norm goes: ``after_pool`` (on the mean token) or
    ``before_pool`` (on every token, then the mean). A ``conv`` head widens every token before the
    mean, so the last stage's norm goes before it (``norm: before_pool``)."""

    type: Literal["pool"] = "pool"
    build_args = PoolHeadArgs
    norm: Literal["after_pool", "before_pool"] = "after_pool"
    conv: ConvHeadSpec | None = Field(None, description="a 1×1 conv, norm and activation before the mean")
    mlp: MlpHeadSpec | None = None
    drop: float = Field(0.0, ge=0, lt=1, description="dropout before the classifier")

    @model_validator(mode="after")
    def _norm_before_conv(self) -> PoolHeadSpec:
        if self.conv is not None and self.norm == "after_pool":
            raise ValueError("a conv head reads the tokens before the mean: set norm: before_pool")
        return self

    def plan(self, tokens: Shape, num_classes: int, site: Site) -> Node:
        given, parts = tokens, []
        conv = None
        if self.conv is not None and tokens.grid is not None and not tokens.prefix:
            x, out = tokens.as_grid(), Shape(self.conv.channels, tokens.grid)
            bias = self.conv.bias
            parts.append(conv_layer(site, "conv", x, out, 1, bias=bias, module="conv_head.conv"))
            conv_site = Site((*site.spec_path, "conv"), "conv_head")
            parts.append(self.conv.norm.plan(out, Site((*conv_site.spec_path, "norm"), conv_site.sub("norm"))))
            parts.append(self.conv.act.plan(out, Site((*conv_site.spec_path, "act"), conv_site.sub("act"))))
            tokens = out.as_tokens()
            conv = {"cin": x.channels, "cout": out.channels, "bias": bias}
        elif self.conv is not None:
            raise PlanProblem((*site.spec_path, "conv"), f"a conv head needs tokens on a grid, got {tokens}")
        dim = tokens.channels
        pool = layer(site, "pool", "pool", tokens, Shape(dim), detail="mean over tokens")
        parts.append(pool)
        hidden = None
        if self.mlp is None:
            parts.append(linear_layer(site, "head", pool.out_shape, num_classes, module="head", reads="pooled"))
        else:
            hidden = self.mlp.hidden or hidden_width(
                dim, 4.0 if self.mlp.ratio is None else self.mlp.ratio, "mlp.ratio"
            )
            fc1 = linear_layer(site, "fc1", pool.out_shape, hidden, module="head.fc1", reads="pooled")
            act = self.mlp.act.plan(fc1.out_shape, Site((*site.spec_path, "mlp", "act"), "head.act"))
            norm = self.mlp.norm.plan(fc1.out_shape, Site((*site.spec_path, "mlp", "norm"), "head.norm"))
            parts += [fc1, act, norm, linear_layer(site, "fc2", fc1.out_shape, num_classes, module="head.fc2")]
        node = self.node(
            site,
            given,
            Shape(num_classes),
            children=parts,
            dim=dim,
            num_classes=num_classes,
            norm=self.norm,
            hidden=hidden,
            hidden_features=self.mlp is not None and self.mlp.features == "hidden",
            drop=self.drop,
            conv=conv,
        )
        return node if conv is None else replace(node, module_paths=("conv_head", "head"))

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
        conv_head = None
        if (c := a.conv) is not None:
            from archspec.nn.heads import ConvHead
            from archspec.nn.init import init_kaiming

            conv = init_kaiming(nn.Conv2d(c["cin"], c["cout"], 1, bias=c["bias"]))
            conv_head = ConvHead(conv, build_node(node.children[1]), build_node(node.children[2]))
        return PoolModel(
            body, init_trunc_normal(head), a.norm == "before_pool", a.drop, conv_head, hidden_features=a.hidden_features
        )
