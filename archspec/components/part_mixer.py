"""Part ``mixer``: a token mixer in a block's flow, by default the one the stage names for the block."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from archspec.nodes import Node, PartInput, PlanProblem, Site, within
from archspec.registry import register
from archspec.slots import Slot
from archspec.specbase import MixerSpec, PartSpec


@register
class MixerPartSpec(PartSpec):
    """``mixer`` gives the part a mixer of its own (a second mixer beside the stage's, for parallel
    branches); left out, the part is the mixer the stage names for this block."""

    type: Literal["mixer"] = "mixer"
    reads: ClassVar[str] = "tokens"
    example: ClassVar[dict[str, Any]] = {"stages.0.block": {"type": "flow"}}
    mixer: Slot[MixerSpec] | None = None

    def plan(self, given: PartInput) -> Node:
        if self.mixer is not None:
            path = (*given.site.spec_path, "mixer")
            return within(path, self.mixer.plan, given.shape, Site(path, given.site.module_path))
        stage = given.block
        if stage.mixer is None:
            message = "the stage names no 'mixer' for this part: give the stage one, or the part its own 'mixer'"
            raise PlanProblem(given.site.spec_path, message)
        site = Site(stage.mixer_path, given.site.module_path)
        return within(stage.mixer_path, stage.mixer.plan, given.shape, site)
