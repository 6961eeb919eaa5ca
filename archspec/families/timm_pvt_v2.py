"""timm's PyramidVisionTransformerV2 checkpoints (``pvt_v2_b0`` … ``pvt_v2_b5``, timm 1.0.31).

timm nests everything under ``stages.i`` (counted from 0) and names a stage's entry conv
``downsample``; archspec keeps flat, 1-based ``patch_embed{i}`` / ``block{i}`` / ``norm{i}`` modules,
with the stem as ``patch_embed1``. The tensors themselves need no reshaping: the attention already
has separate ``q`` and ``kv`` Linears laid out [k | v], as archspec's. Only names change:

==========================================  ==========================================
timm                                        archspec
==========================================  ==========================================
``patch_embed.{proj,norm}``                 ``patch_embed1.{proj,norm}``
``stages.i.downsample.{proj,norm}`` (i>0)   ``patch_embed{i+1}.{proj,norm}``
``stages.i.blocks.j.attn.*``                ``block{i+1}.j.m.*``
``stages.i.blocks.j.mlp.dwconv.*``          ``block{i+1}.j.mlp.dwconv.dwconv.*``
``stages.i.blocks.j.{norm1,norm2,mlp.*}``   ``block{i+1}.j.{norm1,norm2,mlp.*}``
``stages.i.norm``                           ``norm{i+1}``
``head``                                    ``head``
==========================================  ==========================================
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

import torch

from archspec.families import Layout, StateDict, index, register_layout

# Both keys are needed: ``attn.kv`` alone also matches other split-attention families, and
# ``patch_embed.proj`` alone matches ViT-style checkpoints; together, under ``stages.0.blocks``, they
# are PVTv2's overlapping patch embed followed by its spatial-reduction attention.
_REQUIRED = ("patch_embed.proj.weight", "stages.0.blocks.0.attn.kv.weight")

_STAGE = re.compile(r"^stages\.(\d+)\.(.*)$")
_BLOCK = re.compile(r"^blocks\.(\d+)\.(.*)$")


def detect(keys: Collection[str]) -> bool:
    """Whether ``keys`` look like a timm PVTv2 state_dict."""
    present = set(keys)
    return all(key in present for key in _REQUIRED)


def _block_key(stage: int, rest: str) -> str | None:
    """archspec's name for ``stages.<stage>.<rest>`` when ``rest`` is inside a block, else None."""
    match = _BLOCK.match(rest)
    if match is None:
        return None
    index, inner = match.groups()
    if inner.startswith("attn."):
        inner = "m." + inner.removeprefix("attn.")
    elif inner.startswith("mlp.dwconv."):
        # archspec's PVT2FFN wraps its depthwise conv in a DWConv module whose conv is also ``dwconv``.
        inner = "mlp.dwconv.dwconv." + inner.removeprefix("mlp.dwconv.")
    return f"block{stage}.{index}.{inner}"


def _key(key: str) -> str:
    """archspec's name for one timm key; keys outside the known layout keep their name (and then fail to load)."""
    if key.startswith("patch_embed."):
        return "patch_embed1." + key.removeprefix("patch_embed.")
    match = _STAGE.match(key)
    if match is None:
        return key  # ``head.*`` already matches
    stage = index(match.group(1), key) + 1  # archspec counts stages from 1
    rest = match.group(2)
    if rest.startswith("downsample."):
        return f"patch_embed{stage}." + rest.removeprefix("downsample.")
    if rest.startswith("norm."):
        return f"norm{stage}." + rest.removeprefix("norm.")
    return _block_key(stage, rest) or key


def convert(state: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename a timm PVTv2 state_dict into archspec's names (no tensor changes shape)."""
    return {_key(key): value for key, value in state.items()}


LAYOUT = register_layout(
    Layout("timm-pvt-v2", "timm PyramidVisionTransformerV2 (timm/models/pvt_v2.py)", detect, convert)
)
