"""The official GFNet checkpoints (raoyongming/GFNet ``gfnet.py``): the isotropic ``GFNet`` and the
hierarchical ``GFNetPyramid`` (GFNet-H).

Official names → archspec's:

- ``pos_embed`` → ``patch_embed1.pos_embed`` (no class token; added after the first embedding only);
- ``GFNet``: ``patch_embed.proj`` → ``patch_embed1.proj``, ``blocks.j`` → ``block1.j``;
- ``GFNetPyramid``: ``patch_embed.i.proj`` (the patch conv, then the 2×2 ``DownLayer`` convs) →
  ``patch_embed{i+1}.proj``, ``blocks.i.j`` → ``block{i+1}.j``;
- in a block: ``filter`` (the global filter) → ``m``, ``gamma`` (GFNet-H's layer scale) → ``ls.scale``;
  ``norm1``, ``norm2``, ``mlp.fc1``, ``mlp.fc2`` keep their names;
- ``norm`` (the final LayerNorm) → the last stage's norm ``norm{S}``; ``head`` keeps its name.

The tensors keep their shapes: the filter's ``complex_weight`` is (h, w // 2 + 1, C, 2) in both.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

import torch

from archspec.families import Layout, StateDict, index, register_layout

# Every GFNet block holds a global filter; no other family names a parameter ``filter.complex_weight``.
_ISOTROPIC = re.compile(r"^blocks\.\d+\.filter\.complex_weight$")
_PYRAMID = re.compile(r"^blocks\.\d+\.\d+\.filter\.complex_weight$")

_BLOCK_PART = [(re.compile(r"\.filter\."), ".m."), (re.compile(r"\.gamma$"), ".ls.scale")]


def _block_part(rest: str) -> str:
    """A block's own names (``.filter.complex_weight``, ``.gamma``, ``.norm1.weight`` ...) in archspec's."""
    for pattern, replacement in _BLOCK_PART:
        rest = pattern.sub(replacement, rest)
    return rest


def _common(key: str, stages: int) -> str | None:
    """The names both models share, or None for a key that is not one of them."""
    if key == "pos_embed":
        return "patch_embed1.pos_embed"
    if key.startswith("norm."):
        return f"norm{stages}.{key.removeprefix('norm.')}"
    return None


def _convert_isotropic(state: Mapping[str, torch.Tensor]) -> StateDict:
    """``GFNet`` names → archspec's: one stage, so ``blocks.j`` → ``block1.j`` and ``norm`` → ``norm1``."""
    block = re.compile(r"^blocks\.(\d+)(\..+)$")
    result: StateDict = {}
    for key, value in state.items():
        name = _common(key, 1)
        if name is None:
            if key.startswith("patch_embed."):
                name = "patch_embed1." + key.removeprefix("patch_embed.")
            elif found := block.match(key):
                name = f"block1.{index(found[1], key)}{_block_part(found[2])}"
            else:
                name = key  # head.*, and anything unforeseen, which strict loading then names
        result[name] = value
    return result


def _convert_pyramid(state: Mapping[str, torch.Tensor]) -> StateDict:
    """``GFNetPyramid`` names → archspec's: stage i (from 0) → stage i + 1, ``norm`` → the last stage's norm."""
    block = re.compile(r"^blocks\.(\d+)\.(\d+)(\..+)$")
    embed = re.compile(r"^patch_embed\.(\d+)(\..+)$")
    # The final norm belongs to the last stage: count the stages by their blocks.
    stages = 1 + max((index(found[1], key) for key in state if (found := block.match(key))), default=0)
    result: StateDict = {}
    for key, value in state.items():
        name = _common(key, stages)
        if name is None:
            if found := embed.match(key):  # official stages count from 0, archspec's from 1
                name = f"patch_embed{index(found[1], key) + 1}{found[2]}"
            elif found := block.match(key):
                name = f"block{index(found[1], key) + 1}.{index(found[2], key)}{_block_part(found[3])}"
            else:
                name = key
        result[name] = value
    return result


def _detect_isotropic(keys: Collection[str]) -> bool:
    """A ``GFNet`` checkpoint: blocks numbered in one run (``blocks.j.filter.complex_weight``)."""
    return any(_ISOTROPIC.match(key) for key in keys)


def _detect_pyramid(keys: Collection[str]) -> bool:
    """A ``GFNetPyramid`` checkpoint: blocks numbered by stage (``blocks.i.j.filter.complex_weight``)."""
    return any(_PYRAMID.match(key) for key in keys)


GFNET = register_layout(
    Layout("gfnet", "official GFNet (raoyongming/GFNet, GFNet)", _detect_isotropic, _convert_isotropic)
)
GFNET_H = register_layout(
    Layout("gfnet-h", "official GFNet-H (raoyongming/GFNet, GFNetPyramid)", _detect_pyramid, _convert_pyramid)
)
