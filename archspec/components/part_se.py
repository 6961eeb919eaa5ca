"""Part ``se``: squeeze-excitation, gating each channel by a function of the mean over the image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from archspec.nodes import Node, PartInput, PlanProblem, Shape, Site, layer, within
from archspec.planning import conv_layer, round_channels
from archspec.registry import build_node, register
from archspec.slots import Slot, default_component
from archspec.specbase import ActSpec, PartSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class SePartArgs:
    """What ``SePartSpec.build`` reads from its node."""

    dim: int
    hidden: int
    gate: str


@register
class SePartSpec(PartSpec):
    """The squeezed width is ``channels`` if given, else ``dim × ratio`` rounded (at least 1; with ``divisor``,
    to a multiple of it, as MobileNetV3 rounds its widths). ``act``
    runs between the two 1×1 convs; ``gate`` is ``sigmoid`` or ``hard_sigmoid``."""

    type: Literal["se"] = "se"
    build_args = SePartArgs
    example: ClassVar[dict[str, Any]] = {
        "stages.0.block": {
            "type": "flow",
            "parts": {"m": "mixer", "se": "se", "mlp": "ffn"},
            "flow": [["m", "se", "drop_path", "add"], ["mlp", "add"]],
        }
    }
    ratio: float | None = Field(
        None, gt=0, le=16, description="squeezed width / input width (0.25 unless channels is given)"
    )
    channels: int | None = Field(None, ge=1, le=1 << 16, description="squeezed width, instead of ratio")
    divisor: int = Field(
        1, ge=1, le=256, description="round the squeezed width dim × ratio to a multiple of this (MobileNetV3: 8)"
    )
    act: Slot[ActSpec] = Field(default_factory=default_component("act", "relu"))
    gate: Literal["sigmoid", "hard_sigmoid"] = "sigmoid"

    @model_validator(mode="after")
    def _one_width(self) -> SePartSpec:
        if self.channels is not None and self.ratio is not None:
            raise ValueError("give the squeezed width as ratio or as channels, not both")
        return self

    def squeezed(self, dim: int) -> int:
        """The squeezed width for ``dim`` channels (``channels`` if given, else ``dim × ratio`` rounded)."""
        if self.channels is not None:
            return self.channels
        ratio = 0.25 if self.ratio is None else self.ratio
        if self.divisor > 1:
            return round_channels(dim * ratio, self.divisor)
        return max(1, round(dim * ratio))

    def plan(self, given: PartInput) -> Node:
        return self.plan_on(given.shape, given.site)

    def plan_on(self, shape: Shape, site: Site) -> Node:
        """Plan it on ``shape`` at ``site`` (also for components that hold one: the ``pvt2`` FFN's ``se``)."""
        if shape.grid is None or shape.explicit_dims is not None:
            raise PlanProblem(site.spec_path, f"squeeze-excitation needs tokens or a grid, got {shape}")
        dim = shape.channels
        hidden = self.squeezed(dim)
        squeezed = Shape(hidden, (1, 1))
        reduce = conv_layer(
            site, "conv_reduce", Shape(dim, (1, 1)), squeezed, 1, detail=f"mean, 1×1 conv {dim}→{hidden}"
        )
        act_site = Site((*site.spec_path, "act"), site.sub("act"))
        act = within(act_site.spec_path, self.act.plan, squeezed, act_site)
        expand = conv_layer(site, "conv_expand", squeezed, Shape(dim, (1, 1)), 1, detail=f"1×1 conv {hidden}→{dim}")
        gate = layer(site, "gate", "gate", shape, shape, detail=f"× {self.gate}")
        return self.node(
            site, shape, shape, children=(reduce, act, expand, gate), dim=dim, hidden=hidden, gate=self.gate
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from torch import nn

        from archspec.nn.se import SqueezeExcite

        a = node.args
        gate = nn.Sigmoid() if a.gate == "sigmoid" else nn.Hardsigmoid()
        return SqueezeExcite(a.dim, a.hidden, build_node(node.child("act")), gate, not node.in_shape.tokens)
