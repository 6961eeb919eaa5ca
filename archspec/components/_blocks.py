"""What the shipped block forms share: the width check and their parts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archspec import registry
from archspec.errors import KeyPath
from archspec.plan import BlockInput, PlanProblem

if TYPE_CHECKING:
    from torch import nn

    from archspec.specbase import BlockSpec, PartSpec


def keep_width(block: BlockSpec, given: BlockInput) -> None:
    """A block of this kind keeps its input's width: the stage must receive its own."""
    if given.tokens.channels != given.dim:
        raise PlanProblem(
            (*given.site.spec_path[:-1], "dim"),
            f"a {block.type} block keeps the width, but it gets {given.tokens.channels} channels for a stage of "
            f"{given.dim} (give the stage a downsample that changes the width)",
        )


def part(kind: str, written: KeyPath, **fields: Any) -> tuple[PartSpec, KeyPath]:
    """A form's part: the part component ``kind`` with ``fields``, written (for errors) at ``written``."""
    return registry.get("part", kind).model_validate({"type": kind, **fields}), written  # type: ignore[return-value]


def drop_path(rate: float) -> nn.Module:
    """Stochastic depth at ``rate``, or ``nn.Identity`` when it is 0 (so the printed model says so)."""
    from torch import nn

    from archspec.nn import DropPath

    return DropPath(rate) if rate > 0 else nn.Identity()
