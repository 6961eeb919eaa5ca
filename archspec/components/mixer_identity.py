"""Mixer ``identity``: no token mixing, the baseline that shows what a mixer is worth (IdentityFormer)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from archspec.nodes import Node, Shape, Site
from archspec.registry import register
from archspec.specbase import MixerSpec

if TYPE_CHECKING:
    from torch import nn


@register
class IdentityMixerSpec(MixerSpec):
    type: Literal["identity"] = "identity"
    colour = "#f2f2f2"

    def plan(self, tokens: Shape, site: Site) -> Node:
        return self.node(site, tokens, tokens, 0, 0)

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn.identity_mixer import IdentityMixer

        return IdentityMixer()
