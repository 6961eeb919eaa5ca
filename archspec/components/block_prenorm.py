"""Block ``prenorm``: two pre-norm residual branches, the token mixer then the FFN (ViT, PVT, MetaFormer)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from archspec.errors import KeyPath
from archspec.flow import Combine, FlowBlockSpec, Form, Line, part
from archspec.nodes import BlockInput, PlanProblem
from archspec.planning import keep_width
from archspec.registry import register
from archspec.slots import Slot, default_component
from archspec.specbase import NormSpec, PartSpec


@register
class PrenormBlockSpec(FlowBlockSpec):
    """``x + drop_path(m(norm1(x)))``, then ``x + drop_path(mlp(norm2(x)))``. ``layer_scale`` scales each
    branch by a learnable vector starting at that value (CaiT, MetaFormer); ``res_scale`` adds a learnable
    per-channel scale, starting at 1, on each shortcut (MetaFormer v2). With ``stride`` > 1 the stage's first
    block downsamples as CoAtNet's transformer blocks do: the mixer branch averages stride × stride cells
    after ``norm1`` (``down``) and its mixer projects to the stage's width (the mixer needs an ``out``
    field), while the shortcut averages the same cells and widens with a 1×1 conv (``shortcut``, its bias
    ``shortcut_bias``)."""

    type: Literal["prenorm"] = "prenorm"
    norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "layernorm"))
    layer_scale: float | None = Field(None, gt=0, le=10, description="initial value of the per-channel branch scales")
    res_scale: bool = Field(False, description="a learnable per-channel scale on each shortcut")
    stride: int = Field(1, ge=1, le=16, description="the stage's first block pools its mixer's input and its shortcut")
    shortcut_bias: bool = Field(True, description="a bias in the strided shortcut's 1×1 conv")

    def form(self, given: BlockInput) -> Form:
        here = given.site.spec_path
        pooled = given.first and self.stride > 1
        if not pooled:
            keep_width(self, given)
        parts = {name: part(kind, here) for name, kind in (("m", "mixer"), ("norm1", "norm"), ("norm2", "norm"))}
        parts |= {"mlp": part("ffn", here), "drop_path": part("drop_path", here)}
        first: tuple[str, ...] = ("norm1", "m")
        if pooled:
            parts = self._pooled(given, parts)
            first = ("norm1", "down", "m")
        lines: list[Line] = []
        for index, line in enumerate((first, ("norm2", "mlp")), 1):
            if self.layer_scale is not None:
                parts[f"ls{index}"] = part("scale", (*here, "layer_scale"), init=self.layer_scale)
                line = (*line, f"ls{index}")
            lines.append((*line, "drop_path", "add"))
        if pooled:
            lines[0] = (*lines[0][:-1], Combine(add="shortcut"))
        if self.res_scale:
            for index in (1, 2):
                parts[f"res_scale{index}"] = part("scale", (*here, "res_scale"), init=1.0)
            lines = [(*line[:-1], Combine(add=f"res_scale{index}")) for index, line in enumerate(lines, 1)]
        return Form("Block", parts, tuple(lines), here)

    def _pooled(
        self, given: BlockInput, parts: dict[str, tuple[PartSpec, KeyPath]]
    ) -> dict[str, tuple[PartSpec, KeyPath]]:
        """The parts of a first block that pools: the shortcut and ``down`` in front, a widening mixer."""
        here = given.site.spec_path
        if self.res_scale:
            raise PlanProblem(
                (*here, "res_scale"), "a block that pools adds its branch to a pooled shortcut, not a scale"
            )
        cin, dim = given.tokens.channels, given.dim
        shortcut = part("pool_projection", here, out=dim, stride=self.stride, bias=self.shortcut_bias)
        parts = {"shortcut": shortcut, **parts, "down": part("pool_projection", here, out=cin, stride=self.stride)}
        if cin != dim:
            mixer = given.mixer
            if mixer is None or "out" not in type(mixer).model_fields:
                kind = "no" if mixer is None else f"the {mixer.type}"
                raise PlanProblem(
                    given.mixer_path,
                    f"a first block that widens ({cin}→{dim}) needs a mixer with 'out', got {kind} mixer",
                )
            parts["m"] = part("mixer", given.mixer_path, mixer=mixer.model_copy(update={"out": dim}))
        return parts
