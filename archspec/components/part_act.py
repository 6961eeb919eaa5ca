"""Part ``act``: an activation in a block's flow, by default the block's ``act``."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from archspec.nodes import Node, PartInput, Site, within
from archspec.registry import register
from archspec.slots import Slot
from archspec.specbase import ActSpec, PartSpec


@register
class ActPartSpec(PartSpec):
    """``act`` gives the part an activation of its own; left out, the part is the block's ``act``.
    An activation has no parameters, so one part may run at several steps of a flow."""

    type: Literal["act"] = "act"
    example: ClassVar[dict[str, Any]] = {
        "stages.0.block": {
            "type": "flow",
            "parts": {"m": "mixer", "act": "act", "mlp": "ffn"},
            "flow": [["m", "act", "drop_path", "add", "act"], ["mlp", "add"]],
        }
    }
    act: Slot[ActSpec] | None = None

    def plan(self, given: PartInput) -> Node:
        act, path = (self.act, (*given.site.spec_path, "act")) if self.act else (given.act, given.act_path)
        return within(path, act.plan, given.shape, Site(path, given.site.module_path))
