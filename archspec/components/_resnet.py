"""What ResNet's two blocks (``basic``, ``bottleneck``) share: their fields, the shortcut and the last steps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import Field

from archspec.components._common import conv_layer, needs_grid, window_out
from archspec.plan import LAYER_INPUT, BlockInput, Node, PlanProblem, Shape, Site, Step, layer, within
from archspec.registry import build_node
from archspec.specbase import ActSpec, BlockSpec, NormSpec, Slot, default_component

if TYPE_CHECKING:
    from torch import nn

T = TypeVar("T")


def at_block(given: BlockInput, rule: Callable[..., T], *args: Any) -> T:
    """Call a helper whose problems are keyed relative to the block, re-keyed from the block's spec path.

    (:func:`archspec.plan.within` does the same for plan rules that return nodes.)
    """
    try:
        return rule(*args)
    except PlanProblem as problem:
        raise PlanProblem((*given.site.spec_path, *problem.key), problem.message) from None


class ResNetBlockSpec(BlockSpec):
    """A conv block with its own norms and activations and no mixer or FFN: the stage's first block
    changes the width to the stage's and, with ``stride``, the grid; a strided 1×1 conv and a norm
    then carry the shortcut."""

    uses_mixer: ClassVar[bool] = False
    uses_ffn: ClassVar[bool] = False
    colour = "#fff4c2"
    # The generated tests also exercise the projection shortcut: stage 2 enters unchanged, its first block strides.
    example: ClassVar[dict[str, Any]] = {"stages.1.downsample": {"type": "none"}, "stages.1.block.stride": 2}
    stride: int = Field(1, ge=1, le=64, description="stride of the stage's first block (its 3×3 conv and shortcut)")
    norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "batchnorm"))
    act: Slot[ActSpec] = Field(default_factory=default_component("act", "relu"))
    zero_init_last: bool = Field(False, description="zero the last norm's gain, so each branch starts at 0 (timm)")

    def _grid(self, given: BlockInput) -> tuple[int, tuple[int, int]]:
        """The stride this block applies (only the stage's first block strides) and its output grid."""
        grid = at_block(given, needs_grid, given.tokens, f"a {self.type} block")
        stride = self.stride if given.first else 1
        out = window_out(grid, 3, stride, 1, (*given.site.spec_path, "stride"), "the strided 3×3 conv")
        return stride, out

    def _norm(self, given: BlockInput, name: str, shape: Shape) -> Node:
        path = (*given.site.spec_path, "norm")
        return within(path, self.norm.plan, shape, Site(path, given.site.sub(name)))

    def _act(self, given: BlockInput, name: str, shape: Shape) -> Node:
        path = (*given.site.spec_path, "act")
        return within(path, self.act.plan, shape, Site(path, given.site.sub(name)))

    def _conv(self, given: BlockInput, name: str, x: Shape, out: Shape, kernel: int, stride: int = 1) -> Node:
        return conv_layer(given.site, name, x, out, kernel, stride, bias=False)

    def _shortcut(self, given: BlockInput, stride: int, out: Shape) -> Node | None:
        """The projection shortcut where the block changes width or grid, else None (the identity)."""
        x = given.tokens.as_grid()
        if x.channels == out.channels and stride == 1:
            return None
        site = Site(given.site.spec_path, given.site.sub("shortcut"))  # written nowhere: the block makes it
        conv = conv_layer(site, "conv", x, out, 1, stride, bias=False)
        norm = self._norm(given, "shortcut.norm", out)
        whole = layer(
            given.site,
            "projection",
            "shortcut",
            x,
            out,
            conv.params + norm.params,
            conv.flops + norm.flops,
            (site.module_path,),
            f"1×1 conv{f'/{stride}' if stride > 1 else ''} + norm, {x.channels}→{out.channels}",
            after=(LAYER_INPUT,),
        )
        return replace(whole, children=(conv, norm))

    def _finish(
        self, given: BlockInput, parts: list[Node], flow: list[Step], out: Shape, act: str, **args: Any
    ) -> Node:
        """Add the shortcut, the addition and the last activation (named ``act``), and make the block's node."""
        last = flow[-1].name
        shortcut = self._shortcut(given, args["stride"], out)
        if shortcut is not None:
            parts.append(shortcut)
            flow.append(Step("shortcut", after=(LAYER_INPUT,)))
        parts.append(self._act(given, act, out))
        residual = LAYER_INPUT if shortcut is None else "shortcut"
        flow += [Step("add", after=(last,), add=True, residual=residual, drop_path=True), Step(act)]
        return self.node(
            given.site,
            given.tokens,
            out.as_tokens(),
            children=parts,
            flow=flow,
            cin=given.tokens.channels,
            dim=out.channels,
            _zero_init_last=self.zero_init_last,  # initialisation, not structure
            **args,
        )


def shortcut_module(node: Node) -> nn.Module | None:
    """The built projection shortcut of a planned block, or None where it has none."""
    from archspec.nn.resnet_blocks import Projection

    if "shortcut" not in {child.name for child in node.children}:
        return None
    a = node.args
    return Projection(a["cin"], a["dim"], a["stride"], build_node(node.child("shortcut").child("norm")))


def initialise(block: nn.Module, last_norm: nn.Module, zero_last: bool) -> nn.Module:
    """He-normal convs (the norms keep torch's ones and zeros); ``zero_last`` zeroes the last norm's gain."""
    from torch import nn

    from archspec.nn.init import init_kaiming

    init_kaiming(block)
    weight = getattr(last_norm, "weight", None)
    if zero_last and isinstance(weight, nn.Parameter) and not weight.is_meta:
        nn.init.zeros_(weight)
    return block
