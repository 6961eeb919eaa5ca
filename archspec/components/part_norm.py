"""Part ``norm``: a norm in a block's flow, by default of the kind the block's ``norm`` names."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from archspec.plan import Node, PartInput, Site, within
from archspec.registry import register
from archspec.specbase import NormSpec, PartSpec, Slot


@register
class NormPartSpec(PartSpec):
    """``norm`` gives the part a norm of its own (a different kind, or eps); left out, the part is
    a norm as the block's ``norm`` field describes it, so one field changes every norm of the block."""

    type: Literal["norm"] = "norm"
    example: ClassVar[dict[str, Any]] = {"stages.0.block": {"type": "flow"}}
    norm: Slot[NormSpec] | None = None

    def plan(self, given: PartInput) -> Node:
        norm, path = (self.norm, (*given.site.spec_path, "norm")) if self.norm else (given.norm, given.norm_path)
        return within(path, norm.plan, given.shape, Site(path, given.site.module_path))
