"""timm's Swin Transformer checkpoints (timm 1.0.31, ``timm/models/swin_transformer.py``; checked on
``swin_tiny_patch4_window7_224``).

timm nests everything under ``layers.i`` (counted from 0), with a stage's patch merging as its
``downsample``; archspec keeps flat, 1-based ``patch_embed{i}`` / ``block{i}`` / ``norm{i}`` modules,
with the stem as ``patch_embed1`` and the final norm as the last stage's ``norm{n}``. The fused ``qkv``
projection is laid out [q | k | v] in both and patch merging concatenates the 2×2 cells in the same
order, so no tensor is reshaped; only names change. timm's relative-position index and shift masks
are not in its state_dict, nor are archspec's (both derive them from the sizes).

===================================================  ===============================================
timm                                                 archspec
===================================================  ===============================================
``patch_embed.{proj,norm}``                          ``patch_embed1.{proj,norm}``
``layers.i.downsample.{norm,reduction}`` (i > 0)     ``patch_embed{i+1}.{norm,reduction}``
``layers.i.blocks.j.attn.relative_position_bias_table``  ``block{i+1}.j.m.rel_pos.table``
``layers.i.blocks.j.attn.{qkv,proj}``                ``block{i+1}.j.m.{qkv,proj}``
``layers.i.blocks.j.{norm1,norm2,mlp.*}``            ``block{i+1}.j.{norm1,norm2,mlp.*}``
``norm``                                             ``norm{n}`` (n = number of stages)
``head.fc``                                          ``head``
===================================================  ===============================================
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

import torch

from archspec.families import Layout, StateDict, index, register_layout

# A relative-position bias table in the attention of a block under ``layers.i`` is Swin's: the other timm
# families with stages (ConvNeXt, PVT-v2, MetaFormer, RegNet) call them ``stages`` and have no such table.
_MARK = re.compile(r"^layers\.\d+\.blocks\.\d+\.attn\.relative_position_bias_table$")
_STAGE = re.compile(r"^layers\.(\d+)\.(.*)$")
_BLOCK = re.compile(r"^blocks\.(\d+)\.(.*)$")


def detect(keys: Collection[str]) -> bool:
    """Whether ``keys`` look like a timm Swin Transformer state_dict."""
    return "patch_embed.proj.weight" in keys and any(_MARK.match(key) for key in keys)


def _stage_key(stage: int, rest: str) -> str | None:
    """archspec's name for ``layers.<stage - 1>.<rest>``, or None for a key outside the known layout."""
    if rest.startswith("downsample."):
        return f"patch_embed{stage}." + rest.removeprefix("downsample.")
    match = _BLOCK.match(rest)
    if match is None:
        return None
    index, inner = match.groups()
    if inner == "attn.relative_position_bias_table":
        inner = "m.rel_pos.table"
    elif inner.startswith("attn."):
        inner = "m." + inner.removeprefix("attn.")
    return f"block{stage}.{index}.{inner}"


def _key(key: str, stages: int) -> str:
    """archspec's name for one timm key; keys outside the known layout keep their name (and then fail to load)."""
    if key.startswith("patch_embed."):
        return "patch_embed1." + key.removeprefix("patch_embed.")
    if key.startswith("norm."):
        return f"norm{stages}." + key.removeprefix("norm.")
    if key.startswith("head.fc."):
        return "head." + key.removeprefix("head.fc.")
    match = _STAGE.match(key)
    if match is None:
        return key
    return _stage_key(index(match.group(1), key) + 1, match.group(2)) or key  # archspec counts stages from 1


def convert(state: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename a timm Swin Transformer state_dict into archspec's names (tensors unchanged)."""
    stages = 1 + max((index(m.group(1), key) for key in state if (m := _STAGE.match(key))), default=0)
    return {_key(key, stages): value for key, value in state.items()}


LAYOUT = register_layout(Layout("timm-swin", "timm SwinTransformer (timm/models/swin_transformer.py)", detect, convert))
