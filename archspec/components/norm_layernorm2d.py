"""Norm ``layernorm2d``: LayerNorm over the channels of a grid, as ConvNeXt writes it (channels-first).

On tokens it is the same function as ``layernorm``; the name keeps specs written after timm readable.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from archspec.components.norm_layernorm import LayerNormSpec
from archspec.registry import register


@register
class LayerNorm2dSpec(LayerNormSpec):
    type: Literal["layernorm2d"] = "layernorm2d"  # type: ignore[assignment]
    label: ClassVar[str] = "LayerNorm2d"
