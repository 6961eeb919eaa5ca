"""timm's ``Cait`` checkpoints (CaiT) under archspec's names.

timm keeps CaiT as one stack of self-attention blocks (``blocks.i``) followed by the class-attention
blocks (``blocks_token_only.i``) that read the learned ``cls_token``. archspec sees a one-stage
network whose head holds the class-attention blocks as ``post_network``:

- ``pos_embed`` and ``patch_embed.proj`` → ``patch_embed1.pos_embed`` and ``patch_embed1.proj``;
  ``cls_token`` keeps its name (a parameter of the head's model);
- ``blocks.i`` → ``block1.i``, with the talking-heads attention ``attn`` as the mixer ``m``;
  ``blocks_token_only.i`` → ``post_network.i``, whose class attention keeps the name ``attn``;
- the layer scales ``gamma_1``/``gamma_2`` (bare parameters in timm) → ``ls1.scale``/``ls2.scale``;
- ``norm`` (the final LayerNorm) → ``norm1``; ``head`` keeps its name.

One tensor changes shape: timm's class attention projects keys and values with two Linears ``k`` and
``v``, archspec's with one ``kv`` laid out [k | v], so their weights and biases are concatenated.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

import torch

from archspec.families import Layout, Rule, StateDict, register_layout, rename

# The class token with class-attention blocks under ``blocks_token_only``: only CaiT names both.
_REQUIRED = ("cls_token", "blocks_token_only.0.attn.q.weight")

_RULES: list[Rule] = [
    (r"^pos_embed$", "patch_embed1.pos_embed"),
    (r"^patch_embed\.", "patch_embed1."),
    (r"^blocks\.(\d+)\.gamma_([12])$", r"block1.\1.ls\2.scale"),
    (r"^blocks\.(\d+)\.attn\.", r"block1.\1.m."),
    (r"^blocks\.", "block1."),
    (r"^blocks_token_only\.(\d+)\.gamma_([12])$", r"post_network.\1.ls\2.scale"),
    (r"^blocks_token_only\.", "post_network."),
    (r"^norm\.", "norm1."),
]

_KEY_OR_VALUE = re.compile(r"^(post_network\.\d+\.attn)\.([kv])\.(weight|bias)$")


def detect(keys: Collection[str]) -> bool:
    """Whether ``keys`` look like a timm Cait's state_dict."""
    present = set(keys)
    return all(key in present for key in _REQUIRED)


def convert(state: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename a timm Cait state_dict into archspec's names; join each class attention's ``k`` and ``v``."""
    renamed = rename(state, _RULES)
    result: StateDict = {}
    parts: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in renamed.items():
        if found := _KEY_OR_VALUE.match(key):
            parts.setdefault((found[1], found[3]), {})[found[2]] = value
        else:
            result[key] = value
    for (attn, kind), pair in parts.items():
        if set(pair) == {"k", "v"}:
            result[f"{attn}.kv.{kind}"] = torch.cat([pair["k"], pair["v"]])  # [k | v]
        else:  # one without the other: left as it was, for strict loading to name
            result.update({f"{attn}.{name}.{kind}": value for name, value in pair.items()})
    return result


LAYOUT = register_layout(Layout("timm-cait", "timm Cait (CaiT)", detect, convert))
