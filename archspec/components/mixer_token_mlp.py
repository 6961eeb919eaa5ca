"""Mixer ``token_mlp``: MLP-Mixer's token-mixing MLP, two Linears along the token axis."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from archspec.components._tokens import token_count
from archspec.nodes import Node, Shape, Site
from archspec.planning import child_site, hidden_width, linear_layer
from archspec.registry import build_node, register
from archspec.slots import Slot, default_component
from archspec.specbase import ActSpec, MixerSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class TokenMlpArgs:
    """What ``TokenMlpSpec.build`` reads from its node."""

    tokens: int
    hidden: int
    bias: bool


@register
class TokenMlpSpec(MixerSpec):
    """fc1 (N → hidden) → act → fc2 (hidden → N), applied to every channel's N tokens alike. The token
    count N comes from the stage's grid, so the weights fit one input size only; ``tokens`` states the
    count the spec is made for, and planning at an input size that gives another is an error. The hidden
    width is ``hidden``, or the stage's dim × ``ratio`` (0.5 when neither is given, as MLP-Mixer's D_S)."""

    type: Literal["token_mlp"] = "token_mlp"
    build_args = TokenMlpArgs
    colour = "#d7ecd9"
    ratio: float | None = Field(None, gt=0, le=64, description="hidden width = the stage's dim × ratio (default 0.5)")
    hidden: int | None = Field(None, ge=1, le=1 << 20, description="hidden width, instead of ratio")
    tokens: int | None = Field(None, ge=1, le=1 << 20, description="the token count the weights are made for")
    act: Slot[ActSpec] = Field(default_factory=default_component("act", "gelu"))
    bias: bool = True

    @model_validator(mode="after")
    def _ratio_or_hidden(self) -> TokenMlpSpec:
        if self.ratio is not None and self.hidden is not None:
            raise ValueError("give 'ratio' or 'hidden', not both")
        return self

    def size_policy(self) -> str | None:
        return "strict"  # one weight per token: another input size has other tokens

    def plan(self, tokens: Shape, site: Site) -> Node:
        count = token_count(tokens, self.tokens, "a token MLP")
        dim = tokens.channels
        hidden = self.hidden if self.hidden is not None else hidden_width(dim, self.ratio or 0.5, "ratio")
        rows = Shape.of(dim, count)  # (C, N): each channel's tokens are one row for the Linears
        fc1 = linear_layer(site, "fc1", rows, hidden, self.bias, reads="over tokens")
        act = self.act.plan(fc1.out_shape, child_site(site, "act"))
        fc2 = linear_layer(site, "fc2", act.out_shape, count, self.bias, reads="over tokens")
        return self.node(site, tokens, tokens, children=(fc1, act, fc2), tokens=count, hidden=hidden, bias=self.bias)

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn.init import init_trunc_normal
        from archspec.nn.token_mixing import TokenMlp

        a = node.args
        return init_trunc_normal(TokenMlp(a.tokens, a.hidden, build_node(node.child("act")), a.bias))
