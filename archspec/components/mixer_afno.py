"""Mixer ``afno``: AFNO's adaptive Fourier mixing, a block-diagonal complex MLP per frequency with soft-shrinkage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from archspec.nodes import Node, PlanProblem, Shape, Site, layer
from archspec.planning import fft_layers, needs_grid
from archspec.registry import register
from archspec.specbase import MixerSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class AfnoArgs:
    """What ``AfnoSpec.build`` reads from its node."""

    dim: int
    num_blocks: int
    hidden_factor: int
    sparsity: float


@register
class AfnoSpec(MixerSpec):
    """The channels split into ``num_blocks`` diagonal blocks, each with its own two-layer complex MLP over
    every frequency of the token grid (``hidden_factor`` × the block size wide, ReLU between); the
    result is soft-shrunk by ``sparsity`` and added to the input (Guibas et al., 2021). Every
    frequency is kept (AFNO's hard-thresholding fraction 1)."""

    type: Literal["afno"] = "afno"
    build_args = AfnoArgs
    colour = "#cde4f7"
    uses_fft: ClassVar[bool] = True
    num_blocks: int = Field(8, ge=1, le=1024, description="number of diagonal blocks the channels split into")
    hidden_factor: int = Field(1, ge=1, le=16, description="each block's MLP hidden width / block size")
    sparsity: float = Field(0.01, ge=0, le=10, description="soft-shrinkage threshold λ")

    def plan(self, tokens: Shape, site: Site) -> Node:
        height, width = needs_grid(tokens, "an AFNO mixer")
        dim = tokens.channels
        if dim % self.num_blocks:
            raise PlanProblem("num_blocks", f"{self.num_blocks} blocks do not divide the stage's dim {dim}")
        size = dim // self.num_blocks
        hidden = size * self.hidden_factor
        bins = height * (width // 2 + 1)
        spectrum, rfft, irfft = fft_layers(site, tokens, tokens, "ortho, + input")
        # Each layer is four real block products (real and imaginary parts of input and weight).
        first = 4 * 2 * bins * self.num_blocks * size * hidden
        mlp_params = 2 * self.num_blocks * (2 * size * hidden + hidden + size)
        detail = f"{self.num_blocks} blocks of {size}, hidden {hidden}, softshrink {self.sparsity:g}"
        weights = tuple(site.sub(name) for name in ("w1", "b1", "w2", "b2"))  # the mixer's own parameters
        layers = [
            rfft,
            layer(site, "afno_mlp", "mlp", spectrum, spectrum, mlp_params, 2 * first, weights, detail),
            irfft,
        ]
        return self.node(
            site,
            tokens,
            tokens,
            children=layers,
            dim=dim,
            num_blocks=self.num_blocks,
            hidden_factor=self.hidden_factor,
            sparsity=self.sparsity,
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from archspec.nn.afno import AFNOMixer

        a = node.args
        return AFNOMixer(a.dim, a.num_blocks, a.hidden_factor, a.sparsity)
