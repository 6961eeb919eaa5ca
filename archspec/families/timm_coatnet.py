"""timm's CoAtNet checkpoints (timm 1.0.31, ``timm/models/maxxvit.py``; checked on ``coatnet_0_rw_224``).

timm keeps the stem's two convs and its norm under ``stem``, the stages as ``stages.i.blocks.j`` (counted
from 0), one final ``norm`` and ``head.fc``. archspec's ``prenorm_mbconv`` block uses timm's own part
names, so a conv block only moves to its 1-based ``block{i}``; a transformer block's attention is
archspec's ``attention`` mixer, which runs on tokens, so its 1×1 convs (and the MLP's) become Linears.

==============================================================  ===========================================
timm                                                            archspec
==============================================================  ===========================================
``stem.conv1``, ``stem.norm1``, ``stem.conv2``                  ``patch_embed1.conv.{0,1,3}``
``stages.i.blocks.j.se_early.{fc1,fc2}``                        ``block{i+1}.j.se_early.{conv_reduce,conv_expand}``
``stages.i.blocks.j.norm1.norm`` (a pooling first block)        ``block{i+1}.j.norm1``
``stages.i.blocks.j.attn.{qkv,proj}``                           ``block{i+1}.j.m.{qkv,proj}`` (1×1 → Linear)
``stages.i.blocks.j.attn.rel_pos.relative_position_bias_table``  ``block{i+1}.j.m.rel_pos.table``
``stages.i.blocks.j.mlp.{fc1,fc2}``                             ``block{i+1}.j.mlp.{fc1,fc2}`` (1×1 → Linear)
``stages.i.blocks.j.*`` (the rest)                              ``block{i+1}.j.*``
``norm``                                                        ``norm{n}`` (n = number of stages)
``head.fc``                                                     ``head``
==============================================================  ===========================================

The one reordering: timm's ``qkv`` conv (``head_first``) lays its outputs out head by head, each head's
[q | k | v] together; archspec's fused ``qkv`` has all heads' q, then k, then v. The heads are counted
from the block's relative-position table (one column per head).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

import torch

from archspec.families import Layout, StateDict, index, one_based, register_layout, rename
from archspec.weights_file import CheckpointError

# A first conv block whose shortcut pools and widens (``shortcut.expand``) beside a squeeze-excitation
# placed before the norm (``se_early``): timm's CoAtNet. MaxViT's blocks nest their MBConv under ``conv``.
_SHORTCUT = "stages.0.blocks.0.shortcut.expand.weight"
_SE_EARLY = re.compile(r"^stages\.\d+\.blocks\.\d+\.se_early\.")
_STAGE = re.compile(r"^stages\.(\d+)\.blocks\.")
_QKV = re.compile(r"^(block\d+\.\d+\.m\.)qkv\.(weight|bias)$")

_RULES = [
    (r"^stem\.conv1\.", "patch_embed1.conv.0."),
    (r"^stem\.norm1\.", "patch_embed1.conv.1."),
    (r"^stem\.conv2\.", "patch_embed1.conv.3."),
    (r"^head\.fc\.", "head."),
    (r"\.se_early\.fc1\.", ".se_early.conv_reduce."),
    (r"\.se_early\.fc2\.", ".se_early.conv_expand."),
    (r"\.se\.fc1\.", ".se.conv_reduce."),
    (r"\.se\.fc2\.", ".se.conv_expand."),
    (r"\.norm1\.norm\.", ".norm1."),
    (r"\.attn\.rel_pos\.relative_position_bias_table$", ".m.rel_pos.table"),
    (r"\.attn\.", ".m."),
]
_LINEAR = re.compile(r"\.(m\.(qkv|proj)|mlp\.fc[12])\.weight$")


def detect(keys: Collection[str]) -> bool:
    """Whether ``keys`` look like a timm CoAtNet state_dict."""
    return _SHORTCUT in keys and any(_SE_EARLY.match(key) for key in keys)


def _heads_first_to_fused(value: torch.Tensor, heads: int) -> torch.Tensor:
    """timm's (heads, [q | k | v], head_dim) output order → archspec's ([q | k | v], heads, head_dim)."""
    rows = value.shape[0]
    per_head = value.reshape(heads, 3, rows // (3 * heads), *value.shape[1:])
    return per_head.transpose(0, 1).reshape(rows, *value.shape[1:])


def convert(state: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename a timm CoAtNet state_dict into archspec's names, with its 1×1 convs as Linears."""
    stages = 1 + max((index(m.group(1), key) for key in state if (m := _STAGE.match(key))), default=0)
    renamed = rename(state, [*_RULES, (r"^norm\.", f"norm{stages}.")])
    renamed = {one_based(_STAGE, key, "block{}."): value for key, value in renamed.items()}
    result: StateDict = {}
    for key, value in renamed.items():
        if _LINEAR.search(key) and value.ndim == 4 and value.shape[2:] == (1, 1):
            value = value.flatten(1)
        match = _QKV.match(key)
        if match is not None:
            table = renamed.get(f"{match.group(1)}rel_pos.table")
            if table is None:
                raise CheckpointError(f"{key}: no relative-position table beside it to count its heads from")
            value = _heads_first_to_fused(value, table.shape[1])
        result[key] = value
    return result


LAYOUT = register_layout(Layout("timm-coatnet", "timm MaxxVit CoAtNet (timm/models/maxxvit.py)", detect, convert))
