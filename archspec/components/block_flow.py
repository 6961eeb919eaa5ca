"""Block ``flow``: a block written out in the spec as named parts and the lines of its flow."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from archspec import registry
from archspec.errors import did_you_mean
from archspec.flow import DROP_PATH, Combine, FlowBlockSpec, Form, Line
from archspec.nodes import BlockInput
from archspec.registry import register
from archspec.slots import Slot, default_component
from archspec.specbase import ActSpec, NormSpec, PartSpec

RESERVED = frozenset({"add", "sum", "concat", "class_token", "rejoin", "forward", "training", "program", "form"})
"""Names a part cannot take: the flow's own words and the block module's attributes."""


def _default_parts() -> dict[str, Any]:
    kinds = (("m", "mixer"), ("norm1", "norm"), ("norm2", "norm"), ("mlp", "ffn"), ("drop_path", "drop_path"))
    return {name: registry.default("part", kind) for name, kind in kinds}


@register
class FlowSpec(FlowBlockSpec):
    """``parts`` names the block's parts in the order the module registers (and prints) them; ``flow``
    is its forward pass, one line per residual branch (see the README's "Blocks as flows"). The
    defaults are the pre-norm transformer block. Parts written ``norm`` or ``act`` take the block's
    ``norm`` and ``act``."""

    type: Literal["flow"] = "flow"
    example: ClassVar[dict[str, Any]] = {
        "stages.0.block": {
            "type": "flow",
            "parts": {"m": "mixer", "norm": "norm", "mlp": "ffn"},
            "flow": [["m", "drop_path", "add", "norm"], ["mlp", "drop_path", "add"]],
        }
    }
    preset: str | None = Field(
        None,
        description="a block type whose form this one starts from; parts given replace or join its parts by "
        "name, and a flow given replaces its lines",
    )
    norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "layernorm"))
    act: Slot[ActSpec] = Field(default_factory=default_component("act", "gelu"))
    parts: dict[str, Slot[PartSpec]] = Field(
        default_factory=_default_parts,
        min_length=1,
        max_length=64,
        description="the block's parts by name, in the order the module registers them: mixer, ffn, norm, ...",
    )
    flow: tuple[Line, ...] = Field(
        (("norm1", "m", "drop_path", "add"), ("norm2", "mlp", "drop_path", "add")),
        min_length=1,
        max_length=64,
        description="one line per branch from the running x: part names, drop_path, add, {add: part}, "
        "{sum: [lines]}, {concat: [lines]}",
    )

    @field_validator("parts")
    @classmethod
    def _names(cls, parts: dict[str, PartSpec]) -> dict[str, PartSpec]:
        for name, spec in parts.items():
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", name) or name in RESERVED:
                raise ValueError(
                    f"part name {name!r} must be a word of letters, digits and '_' starting with a letter, "
                    f"other than {', '.join(sorted(RESERVED))}"
                )
            if (name == DROP_PATH) != (spec.type == DROP_PATH):
                raise ValueError(f"the name {DROP_PATH!r} is kept for the part of type {DROP_PATH!r}, and only for it")
        return parts

    @field_validator("preset")
    @classmethod
    def _a_form(cls, preset: str | None) -> str | None:
        if preset is None:
            return None
        forms = sorted(name for name in registry.names("block") if name != "flow" and _is_form(name))
        if preset not in forms:
            raise ValueError(
                f"preset {preset!r} is not a block form{did_you_mean(preset, forms)} (forms: {', '.join(forms)})"
            )
        return preset

    def __hash__(self) -> int:
        # Frozen specs hash by value so that plans can be cached; the parts mapping is hashed as its items.
        return hash((self.type, self.preset, self.norm, self.act, tuple(self.parts.items()), self.flow))

    def _own_parts(self) -> dict[str, PartSpec]:
        """The parts this spec gives: all of them, or with a preset only those written."""
        return self.parts if self.preset is None or "parts" in self.model_fields_set else {}

    def _base(self) -> FlowBlockSpec | None:
        if self.preset is None:
            return None
        fields = {"norm": self.norm} if "norm" in self.model_fields_set else {}
        return registry.get("block", self.preset).model_validate(fields)  # type: ignore[return-value]

    def _uses(self, kind: str) -> bool:
        base = self._base()
        own = any(spec.type == kind and getattr(spec, kind, None) is None for spec in self._own_parts().values())
        return own or (base is not None and bool(getattr(base, f"uses_{kind}")))

    @property
    def uses_mixer(self) -> bool:  # type: ignore[override]
        return self._uses("mixer")

    @property
    def uses_ffn(self) -> bool:  # type: ignore[override]
        return self._uses("ffn")

    def form(self, given: BlockInput) -> Form:
        here = given.site.spec_path
        own = {name: (spec, (*here, "parts", name)) for name, spec in self._own_parts().items()}
        base = self._base()
        if base is None:
            return Form("Block", own, self.flow, (*here, "flow"))
        start = base.form(given)
        lines = self.flow if "flow" in self.model_fields_set else start.lines
        return Form(start.name, {**start.parts, **own}, lines, (*here, "flow"))


def _is_form(name: str) -> bool:
    return issubclass(registry.get("block", name), FlowBlockSpec)


__all__ = ["Combine", "FlowSpec"]
