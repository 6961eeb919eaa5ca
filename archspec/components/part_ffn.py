"""Part ``ffn``: a feed-forward network in a block's flow, by default the stage's ``ffn``."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from archspec.nodes import Node, PartInput, Site, within
from archspec.registry import register
from archspec.slots import Slot
from archspec.specbase import FfnSpec, PartSpec


@register
class FfnPartSpec(PartSpec):
    """``ffn`` gives the part a feed-forward network of its own; left out, the part is the stage's ``ffn``."""

    type: Literal["ffn"] = "ffn"
    reads: ClassVar[str] = "tokens"
    example: ClassVar[dict[str, Any]] = {"stages.0.block": {"type": "flow"}}
    ffn: Slot[FfnSpec] | None = None

    def plan(self, given: PartInput) -> Node:
        if self.ffn is not None:
            path = (*given.site.spec_path, "ffn")
            return within(path, self.ffn.plan, given.shape, Site(path, given.site.module_path))
        path = (*given.block.site.spec_path[:-1], "ffn")  # the stage's ffn
        return within(path, given.block.ffn.plan, given.shape, Site(path, given.site.module_path))
