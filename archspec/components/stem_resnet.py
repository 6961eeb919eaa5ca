"""Stem ``resnet``: the ``conv`` stem, but without a projection it keeps its own width (ResNet-50's 64
channels in front of a 256-wide first stage, whose first bottleneck block widens them).

A stop-gap: stem ``conv`` with ``proj: null`` refuses a last conv narrower or wider than the first
stage. Once it hands on its own width instead, ``type: conv`` with the same fields is this stem and
this file can go.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from archspec.components.stem_conv import ConvLayer, ConvStemSpec, Pool, Projection
from archspec.plan import Node, Shape, Site
from archspec.registry import register
from archspec.specbase import NormSpec, Slot, default_component


def _plain_stem() -> tuple[ConvLayer, ...]:
    return (ConvLayer(channels=64, kernel=7, stride=2, padding=3),)


@register
class ResNetStemSpec(ConvStemSpec):
    """Defaults to timm's and torchvision's plain ResNet stem: a 7×7/2 Conv-BN-ReLU to 64 channels and
    a 3×3/2 max-pool, with no projection and no norm after it."""

    type: Literal["resnet"] = "resnet"  # type: ignore[assignment]
    example: ClassVar[dict[str, Any]] = {"stem.layers": [{"channels": 8, "kernel": 7, "stride": 2, "padding": 3}]}
    layers: tuple[ConvLayer, ...] = Field(default_factory=_plain_stem, min_length=1, max_length=64)
    pool: Pool | None = Pool(kernel=3, stride=2, padding=1)
    proj: Projection | None = None
    norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "none"))

    def plan(self, image: Shape, dim: int, site: Site) -> Node:
        # Without a projection the tokens have the last conv's width, whatever the first stage's.
        return super().plan(image, dim if self.proj is not None else self.layers[-1].channels, site)
