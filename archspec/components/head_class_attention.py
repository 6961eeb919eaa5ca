"""Head ``class_attention``: SpectFormer-H's post-network of class-attention blocks, with optional token labelling."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import Field

from archspec import registry
from archspec.flops import attention_flops, linear_flops
from archspec.nodes import LAYER_INPUT, HeadSteps, Node, PlanProblem, Shape, Site, layer, within
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
    heads: int
    hidden: int
    blocks: int
    norm: dict[str, Any]
    num_classes: int
    aux_head: bool


@register
class ClassAttentionHeadSpec(HeadSpec):
    """``heads`` defaults to dim // 32; ``aux_head`` adds the token-labelling classifier."""

    type: Literal["class_attention"] = "class_attention"
    build_args = ClassAttentionHeadArgs
    blocks: int = Field(1, ge=0, le=64)
    heads: int | None = Field(None, ge=1, le=4096)
    mlp_ratio: float = Field(4.0, gt=0, le=64)
    norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "layernorm", eps=1e-6))
    aux_head: bool = False

    def plan(self, tokens: Shape, num_classes: int, site: Site) -> Node:
        dim, n = tokens.channels, tokens.dims[0]
        heads = self.heads if self.heads is not None else max(1, dim // 32)
        if dim % heads:
            written = "" if self.heads is not None else " (the default, dim // 32)"
            raise PlanProblem("heads", f"{heads} heads{written} do not divide the last stage's dim {dim}")
        hidden = hidden_width(dim, self.mlp_ratio, "mlp_ratio")
        # A ClassBlock holds two norms, the kv, q and proj Linears and an FFN; only kv reads every token.
        norm = within(
            ("norm",), self.norm.plan, Shape(dim, (1, n + 1), tokens=True), Site((*site.spec_path, "norm"), "")
        )
        block_params = 2 * norm.params + 4 * dim * dim + 4 * dim + 2 * dim * hidden + hidden + dim
        block_flops = (
            linear_flops(n + 1, dim, 2 * dim)  # kv over cls + tokens
            + linear_flops(1, dim, dim) * 2  # q and proj, cls only
            + attention_flops(1, n + 1, dim)
            + linear_flops(1, dim, hidden) * 2  # FFN on cls
        )
        with_cls = Shape.of(n + 1, dim)  # the class token in front of the tokens
        detail = f"class attention, {heads} heads, mlp {hidden}"
        layers = [
            layer(
                site,
                "class_block",
                f"post_network[{i}]",
                with_cls,
                with_cls,
                block_params,
                block_flops,
                (f"post_network.{i}",),
                detail,
                f"class block {i}",
            )
            for i in range(self.blocks)
        ]
        last = (layers[-1].name if layers else LAYER_INPUT,)
        layers.append(
            linear_layer(site, "head", Shape(dim), num_classes, module="head", reads="class token", after=last)
        )
        if self.aux_head:
            layers.append(
                linear_layer(site, "aux_head", tokens, num_classes, module="aux_head", reads="every token", after=last)
            )
        node = self.node(
            site,
            tokens,
            Shape(num_classes),
            children=layers,
            dim=dim,
            heads=heads,
            hidden=hidden,
            blocks=self.blocks,
            norm=self.norm.model_dump(mode="json"),
            num_classes=num_classes,
            aux_head=self.aux_head,
        )
        paths = ("post_network", "head", "aux_head") if self.aux_head else ("post_network", "head")
        return replace(node, module_paths=paths)

    @staticmethod
    def steps(node: Node) -> HeadSteps:
        # The model puts the tokens' mean in front as the class token, runs the class blocks, then the
        # norm, which head (class token) and aux_head (the other tokens) read; in eval their logits
        # are combined (in training too; TokenLabelling returns them apart).
        tokens, dim = node.in_shape.dims[0], node.in_shape.channels
        start = ("cls_token", "class token", (tokens + 1, dim), "mean of the tokens, put in front")
        blocks = [child.name for child in node.children if child.component == "class_block"]
        how = "head + 0.5 × max over tokens of aux_head"
        combine = (("head", "aux_head"), how) if node.args.aux_head else None
        return HeadSteps(blocks[-1] if blocks else "cls_token", start, combine)

    @staticmethod
    def build_model(node: Node, body: Body) -> nn.Module:
        from torch import nn

        from archspec.nn import FFN, ClassAttention, ClassAttentionModel, ClassBlock
        from archspec.nn.init import init_trunc_normal

        a = node.args
        dim = a.dim
        norm = cast("NormSpec", registry.get("norm", a.norm["type"]).model_validate(a.norm))
        norm_node = norm.plan(Shape(dim, (1, 1), tokens=True), Site(("head", "norm"), ""))
        post_network = nn.ModuleList(
            ClassBlock(
                build_node(norm_node),
                build_node(norm_node),
                ClassAttention(dim, a.heads),
                FFN(dim, a.hidden),
            )
            for _ in range(a.blocks)
        )
        aux_head = nn.Linear(dim, a.num_classes) if a.aux_head else None
        model = ClassAttentionModel(body, post_network, nn.Linear(dim, a.num_classes), aux_head)
        for part in (post_network, model.head, aux_head):
            if part is not None:
                init_trunc_normal(part)
        return model
