"""Head ``class_attention``: SpectFormer-H's post-network of class-attention blocks, with optional token labelling."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.nodes import LAYER_INPUT, BlockInput, HeadSteps, Node, PlanProblem, Shape, Site, layer
from archspec.planning import hidden_width, linear_layer
from archspec.registry import build_node, register
from archspec.slots import Slot, default_component
from archspec.specbase import HeadSpec, NormSpec

if TYPE_CHECKING:
    from torch import nn

    from archspec.nn.backbone import Body


@dataclass(frozen=True)
class ClassAttentionHeadArgs:
    """What ``ClassAttentionHeadSpec.build`` reads from its node."""

    dim: int
    num_classes: int
    aux_head: bool
    learned_token: bool


@register
class ClassAttentionHeadSpec(HeadSpec):
    """``heads`` defaults to dim // 32; ``aux_head`` adds the token-labelling classifier. The class token
    starts as the mean of the last stage's tokens (SpectFormer-H), or, with ``cls_token: learned``, as
    one learned vector (CaiT). ``layer_scale`` gives the class blocks' branches learnable per-channel
    scales starting at that value (CaiT)."""

    type: Literal["class_attention"] = "class_attention"
    build_args = ClassAttentionHeadArgs
    blocks: int = Field(1, ge=0, le=64)
    heads: int | None = Field(None, ge=1, le=4096)
    mlp_ratio: float = Field(4.0, gt=0, le=64)
    norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "layernorm", eps=1e-6))
    aux_head: bool = False
    cls_token: Literal["mean", "learned"] = Field("mean", description="the class token: the tokens' mean, or learned")
    layer_scale: float | None = Field(None, gt=0, le=10, description="initial value of the class blocks' branch scales")

    def plan(self, tokens: Shape, num_classes: int, site: Site) -> Node:
        from archspec.components.block_class import ClassBlockSpec
        from archspec.components.ffn_mlp import MlpFfnSpec
        from archspec.components.mixer_class_attention import ClassAttentionMixerSpec

        dim = tokens.channels
        heads = self.heads if self.heads is not None else max(1, dim // 32)
        if dim % heads:
            written = "" if self.heads is not None else " (the default, dim // 32)"
            raise PlanProblem("heads", f"{heads} heads{written} do not divide the last stage's dim {dim}")
        hidden = hidden_width(dim, self.mlp_ratio, "mlp_ratio")
        # Each post-network block is the ``class`` form: class attention over [class token; tokens], an
        # FFN on the class token, its norms the head's ``norm``.
        block = ClassBlockSpec(norm=self.norm, layer_scale=self.layer_scale)
        mixer, ffn = ClassAttentionMixerSpec(heads=heads), MlpFfnSpec(ratio=self.mlp_ratio)
        with_cls = Shape(dim, tokens.grid, tokens=True, prefix=1)  # the class token in front of the tokens
        layers = []
        if self.cls_token == "learned":
            start = layer(site, "token", "cls_token", tokens, with_cls, dim, 0, ("cls_token",), "learned class token")
            layers.append(start)
        for i in range(self.blocks):
            given = BlockInput(
                with_cls, dim, i == 0, ffn, mixer, site.spec_path, Site(site.spec_path, f"post_network.{i}")
            )
            try:
                planned = block.plan(given)
            except PlanProblem as problem:  # keyed from the spec's root; the head's own are keyed from the head
                raise PlanProblem(problem.key[len(site.spec_path) :], problem.message) from None
            detail = f"class attention, {heads} heads, mlp {hidden}"
            layers.append(replace(planned, name=f"post_network[{i}]", title=f"class block {i}", detail=detail))
        last = (layers[-1].name if layers else LAYER_INPUT,)
        layers.append(
            linear_layer(site, "head", Shape(dim), num_classes, module="head", reads="class token", after=last)
        )
        if self.aux_head:
            layers.append(
                linear_layer(site, "aux_head", tokens, num_classes, module="aux_head", reads="every token", after=last)
            )
        learned = self.cls_token == "learned"
        node = self.node(
            site,
            tokens,
            Shape(num_classes),
            children=layers,
            dim=dim,
            num_classes=num_classes,
            aux_head=self.aux_head,
            learned_token=learned,
        )
        paths = ("post_network", "head", "aux_head") if self.aux_head else ("post_network", "head")
        return replace(node, module_paths=paths + ("cls_token",) * learned)

    @staticmethod
    def steps(node: Node) -> HeadSteps:
        # The model puts the class token (the tokens' mean, or a learned one) in front, runs the class
        # blocks, then the norm, which head (class token) and aux_head (the other tokens) read; in eval
        # their logits are combined (in training too; TokenLabelling returns them apart).
        tokens, dim = node.in_shape.dims[0], node.in_shape.channels
        # A learned class token is a layer of its own; the mean of the tokens is a step of the forward.
        mean = ("cls_token", "class token", (tokens + 1, dim), "mean of the tokens, put in front")
        start = None if node.args.learned_token else mean
        blocks = [child.name for child in node.children if child.kind == "block"]
        how = "head + 0.5 × max over tokens of aux_head"
        combine = (("head", "aux_head"), how) if node.args.aux_head else None
        return HeadSteps(blocks[-1] if blocks else "cls_token", start, combine)

    @staticmethod
    def build_model(node: Node, body: Body) -> nn.Module:
        from torch import nn

        from archspec.nn import ClassAttentionModel
        from archspec.nn.init import init_trunc_normal

        a = node.args
        post_network = nn.ModuleList(build_node(child) for child in node.children if child.kind == "block")
        aux_head = nn.Linear(a.dim, a.num_classes) if a.aux_head else None
        model = ClassAttentionModel(
            body, post_network, nn.Linear(a.dim, a.num_classes), aux_head, a.dim if a.learned_token else None
        )
        for part in (model.head, aux_head):
            if part is not None:
                init_trunc_normal(part)
        return model
