"""Part ``norm``: a norm in a block's flow, by default of the kind the block's ``norm`` names."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from archspec.nodes import Node, PartInput, Site, within
from archspec.registry import build_node, register
from archspec.slots import Slot
from archspec.specbase import NormSpec, PartSpec

if TYPE_CHECKING:
    from torch import nn


@register
class NormPartSpec(PartSpec):
    """``norm`` gives the part a norm of its own (a different kind, or eps); left out, the part is
    a norm as the block's ``norm`` field describes it, so one field changes every norm of the block."""

    type: Literal["norm"] = "norm"
    example: ClassVar[dict[str, Any]] = {"stages.0.block": {"type": "flow"}}
    norm: Slot[NormSpec] | None = None
    zero_init: bool = Field(False, description="start the gain at 0, so that a branch it closes starts at 0")

    def plan(self, given: PartInput) -> Node:
        norm, path = (self.norm, (*given.site.spec_path, "norm")) if self.norm else (given.norm, given.norm_path)
        node = within(path, norm.plan, given.shape, Site(path, given.site.module_path))
        if not self.zero_init:
            return node
        return self.node(given.site, node.in_shape, node.out_shape, children=(replace(node, name="norm"),))

    @staticmethod
    def build(node: Node) -> nn.Module:
        # Only a zero-initialised norm is planned as this part's own node (around the norm it holds).
        from torch import nn

        module = build_node(node.children[0])
        weight = getattr(module, "weight", None)
        if isinstance(weight, nn.Parameter) and not weight.is_meta:
            nn.init.zeros_(weight)
        return module
