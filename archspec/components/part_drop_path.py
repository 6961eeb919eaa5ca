"""Part ``drop_path``: the block's stochastic depth, at the rate the model's schedule gives the block."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from archspec.nodes import Node, PartInput
from archspec.registry import register
from archspec.specbase import PartSpec

if TYPE_CHECKING:
    from torch import nn


@register
class DropPathPartSpec(PartSpec):
    """A flow writes ``drop_path`` just before an ``add`` to drop that branch for random samples in
    training. Naming it among the parts only places it in the printed module; otherwise it comes last."""

    type: Literal["drop_path"] = "drop_path"
    example: ClassVar[dict[str, Any]] = {"stages.0.block": {"type": "flow"}}

    def plan(self, given: PartInput) -> Node:
        shape = given.shape
        return self.node(given.site, shape, shape, 0, 0, detail="stochastic depth")

    @staticmethod
    def build(node: Node) -> nn.Module:
        from torch import nn

        return nn.Identity()  # the block builds its own at its rate (archspec.flow.build_form)
