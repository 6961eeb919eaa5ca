"""Mixer ``token_linear``: ResMLP's token mixer, one Linear (N → N) along the token axis."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.components._tokens import token_count
from archspec.nodes import Node, Shape, Site
from archspec.planning import linear_layer
from archspec.registry import register
from archspec.specbase import MixerSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class TokenLinearArgs:
    """What ``TokenLinearSpec.build`` reads from its node."""

    tokens: int
    bias: bool


@register
class TokenLinearSpec(MixerSpec):
    """Each output token is a learned weighted sum of all N input tokens, the same sum for every
    channel. N comes from the stage's grid, so the weights fit one input size only; ``tokens`` states
    the count the spec is made for, and planning at an input size that gives another is an error."""

    type: Literal["token_linear"] = "token_linear"
    build_args = TokenLinearArgs
    colour = "#e3f1d4"
    tokens: int | None = Field(None, ge=1, le=1 << 20, description="the token count the weights are made for")
    bias: bool = True

    def size_policy(self) -> str | None:
        return "strict"  # one weight per pair of tokens: another input size has other tokens

    def plan(self, tokens: Shape, site: Site) -> Node:
        count = token_count(tokens, self.tokens, "a token Linear")
        rows = Shape.of(tokens.channels, count)  # (C, N): each channel's tokens are one row for the Linear
        fc = linear_layer(site, "fc", rows, count, self.bias, reads="over tokens")
        return self.node(site, tokens, tokens, children=(fc,), tokens=count, bias=self.bias)

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn.init import init_trunc_normal
        from archspec.nn.token_mixing import TokenLinear

        return init_trunc_normal(TokenLinear(node.args.tokens, node.args.bias))
