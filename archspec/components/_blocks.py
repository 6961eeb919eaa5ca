"""What the blocks with a token mixer and an FFN share: the width check, planning their parts at the
right keys, the layer-scale part, and the block node itself."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from archspec.plan import LAYER_INPUT, BlockInput, Node, PlanProblem, Site, Step, layer, within

if TYPE_CHECKING:
    from torch import nn

    from archspec.specbase import BlockSpec, NormSpec


def keep_width(block: BlockSpec, given: BlockInput) -> None:
    """A block of this kind keeps its input's width: the stage must receive its own."""
    if given.tokens.channels != given.dim:
        raise PlanProblem(
            (*given.site.spec_path[:-1], "dim"),
            f"a {block.type} block keeps the width, but it gets {given.tokens.channels} channels for a stage of "
            f"{given.dim} (give the stage a downsample that changes the width)",
        )


def plan_parts(given: BlockInput, norm: NormSpec, names: Sequence[str]) -> list[Node]:
    """Plan the block's parts in order: ``m`` is the stage's mixer, ``mlp`` its FFN, any other name a
    norm from the block's ``norm``; each is keyed (for errors) at the spec path it was written at."""
    tokens, site = given.tokens, given.site
    assert given.mixer is not None  # uses_mixer: the planner refuses a stage without one
    norm_path = (*site.spec_path, "norm")
    ffn_path = (*site.spec_path[:-1], "ffn")
    parts = []
    for name in names:
        at = f"{site.module_path}.{name}"
        if name == "m":
            parts.append(within(given.mixer_path, given.mixer.plan, tokens, Site(given.mixer_path, at)))
        elif name == "mlp":
            parts.append(within(ffn_path, given.ffn.plan, tokens, Site(ffn_path, at)))
        else:
            parts.append(within(norm_path, norm.plan, tokens, Site(norm_path, at)))
    return parts


def scale_part(given: BlockInput, name: str, init: float, what: str = "scale") -> Node:
    """A learnable per-channel scale (an elementwise product: no FLOPs, as the counter sees it)."""
    tokens, site = given.tokens, given.site
    detail = f"× {what}, init {init:g}"
    return layer(site, "scale", name, tokens, tokens, tokens.channels, 0, (f"{site.module_path}.{name}",), detail)


def one_residual(names: Sequence[str], layer_scale: float | None) -> list[Step]:
    """The flow of a block with a single residual branch: its parts in order, an optional layer scale
    ``ls`` last, then the addition of the block's input."""
    flow = [Step(name) for name in names]
    if layer_scale is not None:
        flow.append(Step("ls"))
    return [*flow, Step("add", add=True, residual=LAYER_INPUT)]


def layer_scale_module(node: Node) -> nn.Module | None:
    """The ``ls`` part of a one-residual block, starting at its ``layer_scale``, or None without one."""
    from archspec.nn.scale import Scale

    init = node.args["layer_scale"]
    return Scale(node.in_shape.channels, init) if init is not None else None


def block_node(block: BlockSpec, given: BlockInput, parts: list[Node], flow: list[Step], **args: Any) -> Node:
    """The block's node: its parts, its flow, and what drawings and summaries read off it."""
    assert given.mixer is not None
    tokens = given.tokens
    return block.node(
        given.site,
        tokens,
        tokens,
        children=parts,
        flow=flow,
        mixer=given.mixer.type,
        ffn=given.ffn.type,
        **args,
    )


def drop_path(rate: float) -> nn.Module:
    """Stochastic depth at ``rate``, or ``nn.Identity`` when it is 0 (so the printed model says so)."""
    from torch import nn

    from archspec.nn import DropPath

    return DropPath(rate) if rate > 0 else nn.Identity()
