"""Stem ``patch``: one conv over the image (patches, or overlapping windows), a norm, and optionally a
class token and learned position embeddings (ViT, DeiT, GFNet, PVT-v2, ConvNeXt, MetaFormer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from archspec.nodes import Node, Shape, Site, layer
from archspec.planning import child_site, conv_layer, window_out
from archspec.registry import build_node, register
from archspec.slots import Slot, default_component
from archspec.specbase import NormSpec, StemSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class PatchStemArgs:
    """What ``PatchStemSpec.build`` reads from its node."""

    cin: int
    dim: int
    patch: int
    stride: int
    padding: int
    bias: bool
    cls_token: bool
    pos_embed: bool
    height: int
    width: int
    pos_drop: float
    resize: str


@register
class PatchStemSpec(StemSpec):
    """``patch`` is the conv's kernel; ``stride`` defaults to it (non-overlapping patches) and
    ``padding`` to 0. ``pos_embed`` adds a learned embedding per token, resized bilinearly for other
    input sizes (or refused with ``resize: strict``)."""

    type: Literal["patch"] = "patch"
    build_args = PatchStemArgs
    patch: int = Field(4, ge=1, le=255, description="the conv's kernel size")
    stride: int | None = Field(None, ge=1, le=255, description="the conv's stride (default: the kernel size)")
    padding: int = Field(0, ge=0, le=127)
    bias: bool = True
    norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "layernorm", eps=1e-5))
    cls_token: bool = Field(False, description="a learned class token in front of the patch tokens")
    pos_embed: bool = Field(False, description="learned position embeddings added to every token")
    pos_drop: float = Field(0.0, ge=0, lt=1, description="dropout after the position embeddings")
    resize: Literal["interpolate", "strict"] = Field(
        "interpolate", description="at another input size: resize the position embeddings bilinearly, or refuse"
    )

    def shown(self) -> str:
        return super(PatchStemSpec, self.model_copy(update={"stride": self.stride or self.patch})).shown()

    def size_policy(self) -> str | None:
        return self.resize if self.pos_embed else None  # one embedding per token of the built grid

    def plan(self, image: Shape, dim: int, site: Site) -> Node:
        assert image.grid is not None
        stride = self.stride or self.patch
        grid = window_out(image.grid, self.patch, stride, self.padding, "patch", "the patch conv")
        prefix = int(self.cls_token)
        tokens = Shape(dim, grid, tokens=True, prefix=prefix)
        plain = Shape(dim, grid, tokens=True)
        parts = [
            conv_layer(site, "proj", image, Shape(dim, grid), self.patch, stride, self.bias),
            self.norm.plan(plain, child_site(site, "norm")),
        ]
        if self.cls_token:
            parts.append(
                layer(site, "token", "cls_token", plain, tokens, dim, 0, (site.sub("cls_token"),), "class token")
            )
        if self.pos_embed:
            count = tokens.dims[0]
            detail = f"learned, {count} positions"
            parts.append(
                layer(site, "pos_embed", "pos_embed", tokens, tokens, count * dim, 0, (site.sub("pos_embed"),), detail)
            )
        return self.node(
            site,
            image,
            tokens,
            children=parts,
            cin=image.channels,
            dim=dim,
            patch=self.patch,
            stride=stride,
            padding=self.padding,
            bias=self.bias,
            cls_token=self.cls_token,
            pos_embed=self.pos_embed,
            height=grid[0],
            width=grid[1],
            pos_drop=self.pos_drop,
            resize=self.resize,
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        from torch import nn

        from archspec.nn import PatchEmbed
        from archspec.nn.init import init_fan_out

        a = node.args
        proj = init_fan_out(nn.Conv2d(a.cin, a.dim, a.patch, a.stride, a.padding, bias=a.bias))
        grid = (a.height, a.width) if a.pos_embed else None
        return PatchEmbed(proj, build_node(node.child("norm")), a.cls_token, grid, a.pos_drop, a.resize)
