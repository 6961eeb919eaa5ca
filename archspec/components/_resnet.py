"""What ResNet's two blocks (``basic``, ``bottleneck``) share: their fields, the grid check and the
shortcut that ends their forms."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, NamedTuple, TypeVar

from pydantic import Field

from archspec.errors import KeyPath
from archspec.flow import Combine, FlowBlockSpec, Form, Line, part
from archspec.nodes import BlockInput, PlanProblem
from archspec.planning import needs_grid, window_out
from archspec.slots import Slot, default_component
from archspec.specbase import ActSpec, NormSpec, PartSpec

T = TypeVar("T")


def at_block(given: BlockInput, rule: Callable[..., T], *args: Any) -> T:
    """Call a helper whose problems are keyed relative to the block, re-keyed from the block's spec path.

    (:func:`archspec.plan.within` does the same for plan rules that return nodes.)
    """
    try:
        return rule(*args)
    except PlanProblem as problem:
        raise PlanProblem((*given.site.spec_path, *problem.key), problem.message) from None


class Conv(NamedTuple):
    """One conv → norm (→ act) layer of a ResNet-style block: output channels, kernel, stride and groups."""

    out: int
    kernel: int
    stride: int = 1
    groups: int = 1


class ResNetBlockSpec(FlowBlockSpec):
    """A conv block with its own norms and activations and no mixer or FFN: the stage's first block
    changes the width to the stage's and, with ``stride``, the grid; a strided 1×1 conv and a norm
    then carry the shortcut."""

    uses_mixer: ClassVar[bool] = False
    uses_ffn: ClassVar[bool] = False
    colour = "#fff4c2"
    printed: ClassVar[str]
    """What the built block prints as (timm's class name)."""
    # The generated tests also exercise the projection shortcut: stage 2 enters unchanged, its first block strides.
    example: ClassVar[dict[str, Any]] = {"stages.1.downsample": {"type": "none"}, "stages.1.block.stride": 2}
    stride: int = Field(1, ge=1, le=64, description="stride of the stage's first block (its 3×3 conv and shortcut)")
    norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "batchnorm"))
    act: Slot[ActSpec] = Field(default_factory=default_component("act", "relu"))
    zero_init_last: bool = Field(False, description="zero the last norm's gain, so each branch starts at 0 (timm)")

    def _stride(self, given: BlockInput) -> int:
        """The stride this block applies (only the stage's first block strides), checked against its grid."""
        grid = at_block(given, needs_grid, given.tokens, f"a {self.type} block")
        stride = self.stride if given.first else 1
        window_out(grid, 3, stride, 1, (*given.site.spec_path, "stride"), "the strided 3×3 conv")
        return stride

    def _form(
        self,
        given: BlockInput,
        convs: list[Conv],
        stride: int,
        after: Mapping[int, tuple[str, tuple[PartSpec, KeyPath]]] | None = None,
    ) -> Form:
        """The form ``conv → norm → act`` per entry of ``convs``, without the last act; then the
        shortcut, the addition and the last act. ``after`` puts a named part right after the act of the
        conv with that (1-based) index (RegNetY's squeeze-excitation after the 3×3 conv)."""
        here = given.site.spec_path
        parts: dict[str, tuple[PartSpec, KeyPath]] = {}
        line: list[str | Combine] = []
        extra = after or {}
        for index, conv in enumerate(convs, 1):
            last = index == len(convs)
            fields = dict(out=conv.out, kernel=conv.kernel, stride=conv.stride)
            parts[f"conv{index}"] = part("conv", here, **fields, **({"groups": conv.groups} if conv.groups > 1 else {}))
            parts[f"bn{index}"] = part("norm", here, zero_init=last and self.zero_init_last)
            line += [f"conv{index}", f"bn{index}"]
            if not last:
                parts[f"act{index}"] = part("act", here)
                line.append(f"act{index}")
            if index in extra:
                name, extra_part = extra[index]
                parts[name] = extra_part
                line.append(name)
        if given.tokens.channels != given.dim or stride > 1:
            parts["shortcut"] = part("projection", here, stride=stride)
        act = f"act{len(convs)}"
        parts[act] = part("act", here)
        parts["drop_path"] = part("drop_path", here)
        line += ["drop_path", Combine(add="shortcut") if "shortcut" in parts else "add", act]
        lines: tuple[Line, ...] = (tuple(line),)
        return Form(self.printed, parts, lines, here)
