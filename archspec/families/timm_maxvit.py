"""timm's MaxViT checkpoints (timm 1.0.31, ``timm/models/maxxvit.py``; checked on ``maxvit_tiny_tf_224``).

timm nests a block's MBConv under ``conv``, its two transformer layers under ``attn_block`` and ``attn_grid``;
archspec's ``maxvit`` block holds the same parts flat, in 1-based ``block{i}`` stages. The stem's convs
and norm are ``conv.{0,1,3}`` of archspec's stem (its activation is ``conv.2``); the head's norm is the last
stage's ``norm{n}``. The fused ``qkv`` projection is laid out [q | k | v] in both (timm: ``head_first=False``).

The TensorFlow-style relative-position table (``RelPosBiasTf``) is (heads, 2H − 1, 2W − 1) indexed by the
key's position minus the query's; archspec's is ((2H − 1)(2W − 1), heads) indexed by the query's minus the
key's, so the table is flipped along both offset axes and transposed. A table already in archspec's
(Swin's) layout, timm's ``RelPosBias``, is kept.

=================================================================  ===========================================
timm                                                               archspec
=================================================================  ===========================================
``stem.{conv1,norm1,conv2}``                                       ``patch_embed1.conv.{0,1,3}``
``stages.i.blocks.j.conv.shortcut.expand``                         ``block{i+1}.j.shortcut.expand``
``stages.i.blocks.j.conv.{pre_norm,conv1_1x1,norm1,...}``          ``block{i+1}.j.{pre_norm,conv1_1x1,norm1,...}``
``stages.i.blocks.j.conv.se.{fc1,fc2}``                            ``block{i+1}.j.se.{conv_reduce,conv_expand}``
``stages.i.blocks.j.attn_block.{norm1,norm2,mlp}``                 ``block{i+1}.j.block_{norm1,norm2,mlp}``
``stages.i.blocks.j.attn_block.attn.{qkv,proj}``                   ``block{i+1}.j.block_attn.{qkv,proj}``
``stages.i.blocks.j.attn_block.attn.rel_pos.relative_position_bias_table``  ``block{i+1}.j.block_attn.rel_pos.table``
``stages.i.blocks.j.attn_grid.*``                                  ``block{i+1}.j.grid_*`` (as ``attn_block``)
``head.norm``                                                      ``norm{n}`` (n = number of stages)
``head.pre_logits.fc``, ``head.fc``                                ``head.fc1``, ``head.fc2``
=================================================================  ===========================================
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

import torch

from archspec.families import Layout, StateDict, index, register_layout

# Grid attention is MaxViT's alone: CoAtNet's blocks (the same timm file) have one ``attn`` layer.
_MARK = re.compile(r"^stages\.\d+\.blocks\.\d+\.attn_grid\.attn\.qkv\.weight$")
_BLOCK = re.compile(r"^stages\.(\d+)\.blocks\.(\d+)\.(conv|attn_block|attn_grid)\.(.*)$")
_STEM = {
    "stem.conv1.": "patch_embed1.conv.0.",
    "stem.norm1.": "patch_embed1.conv.1.",
    "stem.conv2.": "patch_embed1.conv.3.",
}
_TABLE = "rel_pos.relative_position_bias_table"


def detect(keys: Collection[str]) -> bool:
    """Whether ``keys`` look like a timm MaxViT state_dict."""
    return "stem.conv1.weight" in keys and any(_MARK.match(key) for key in keys)


def _inner(part: str, rest: str) -> str:
    """archspec's name, within the block, for ``rest`` of timm's ``conv``, ``attn_block`` or ``attn_grid``."""
    if part == "conv":
        if rest.startswith("se.fc1."):
            return "se.conv_reduce." + rest.removeprefix("se.fc1.")
        if rest.startswith("se.fc2."):
            return "se.conv_expand." + rest.removeprefix("se.fc2.")
        return rest
    prefix = "block_" if part == "attn_block" else "grid_"
    if rest == f"attn.{_TABLE}":
        return f"{prefix}attn.rel_pos.table"
    return prefix + rest


def _table(value: torch.Tensor) -> torch.Tensor:
    """A (heads, 2H − 1, 2W − 1) key-minus-query table as archspec's ((2H − 1)(2W − 1), heads) query-minus-key one."""
    if value.dim() != 3:
        return value
    heads = value.shape[0]
    return value.flip(1, 2).permute(1, 2, 0).reshape(-1, heads).contiguous()


def _key(key: str, stages: int) -> str:
    """archspec's name for one timm key; keys outside the known layout keep their name (and then fail to load)."""
    for old, new in _STEM.items():
        if key.startswith(old):
            return new + key.removeprefix(old)
    if key.startswith("head.norm."):
        return f"norm{stages}." + key.removeprefix("head.norm.")
    if key.startswith("head.pre_logits.fc."):
        return "head.fc1." + key.removeprefix("head.pre_logits.fc.")
    if key.startswith("head.fc."):
        return "head.fc2." + key.removeprefix("head.fc.")
    match = _BLOCK.match(key)
    if match is None:
        return key
    stage, block, part, rest = match.groups()
    return f"block{index(stage, key) + 1}.{index(block, key)}.{_inner(part, rest)}"  # archspec counts stages from 1


def convert(state: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename a timm MaxViT state_dict into archspec's names, re-laying out TensorFlow-style bias tables."""
    stages = 1 + max((index(m.group(1), key) for key in state if (m := _BLOCK.match(key))), default=0)
    return {_key(key, stages): _table(value) if key.endswith(_TABLE) else value for key, value in state.items()}


LAYOUT = register_layout(Layout("timm-maxvit", "timm MaxxVit, MaxViT blocks (timm/models/maxxvit.py)", detect, convert))
