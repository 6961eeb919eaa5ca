"""timm's ConvNeXt and ConvNeXt-V2 checkpoints (timm 1.0.31, ``timm/models/convnext.py``; checked on
``convnext_atto``, ``convnext_tiny`` and ``convnextv2_atto``).

timm nests everything under ``stages.i`` (counted from 0); archspec keeps flat, 1-based
``patch_embed{i}`` / ``block{i}`` / ``norm{i}`` modules, with the stem as ``patch_embed1`` and the
last stage's norm (timm's ``head.norm``, applied after pooling) as ``norm{n}``:

===============================================  ====================================================
timm                                             archspec
===============================================  ====================================================
``stem.0`` (conv), ``stem.1`` (norm)             ``patch_embed1.proj``, ``patch_embed1.norm``
``stages.i.downsample.0`` (norm), ``.1`` (conv)  ``patch_embed{i+1}.norm``, ``patch_embed{i+1}.proj``
``stages.i.blocks.j.gamma``                      ``block{i+1}.j.ls.scale``
``stages.i.blocks.j.conv_dw``                    ``block{i+1}.j.m.conv``
``stages.i.blocks.j.{norm,mlp.fc1,mlp.fc2}``     ``block{i+1}.j.{norm,mlp.fc1,mlp.fc2}``
``stages.i.blocks.j.mlp.grn`` (V2)               ``block{i+1}.j.mlp.norm``
``head.norm``                                    ``norm{n}`` (n = number of stages)
``head.fc``                                      ``head``
===============================================  ====================================================

The only reshapes: variants with ``conv_mlp=True`` (such as ``convnext_atto`` and every V2) write the MLP as 1×1
convs, whose (out, in, 1, 1) weights become archspec's (out, in) Linear weights; and a V2 GRN's gamma and beta,
one value per channel in any shape, become flat (C,) vectors.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

import torch

from archspec.families import Layout, StateDict, conv1x1_to_linear, index, register_layout

# A depthwise conv named ``conv_dw`` directly in a stage's block is ConvNeXt's; the other timm families
# built from stages of blocks (MetaFormer, PVTv2, ...) name their block parts otherwise.
_MARK = re.compile(r"^stages\.\d+\.blocks\.\d+\.conv_dw\.weight$")
_STAGE = re.compile(r"^stages\.(\d+)\.(.*)$")
_BLOCK = re.compile(r"^blocks\.(\d+)\.(.*)$")
_DOWNSAMPLE = {"0": "norm", "1": "proj"}  # timm's Sequential(norm, conv)
_GRN = re.compile(r"^block\d+\.\d+\.mlp\.norm\.(weight|bias)$")


def detect(keys: Collection[str]) -> bool:
    """Whether ``keys`` look like a timm ConvNeXt state_dict."""
    return "stem.0.weight" in keys and any(_MARK.match(key) for key in keys)


def _stage_key(stage: int, rest: str) -> str | None:
    """archspec's name for ``stages.<stage - 1>.<rest>``, or None for a key outside the known layout."""
    if rest.startswith("downsample."):
        index, _, leaf = rest.removeprefix("downsample.").partition(".")
        return f"patch_embed{stage}.{_DOWNSAMPLE[index]}.{leaf}" if index in _DOWNSAMPLE else None
    match = _BLOCK.match(rest)
    if match is None:
        return None
    index, inner = match.groups()
    if inner == "gamma":
        inner = "ls.scale"
    elif inner.startswith("conv_dw."):
        inner = "m.conv." + inner.removeprefix("conv_dw.")
    elif inner.startswith("mlp.grn."):
        inner = "mlp.norm." + inner.removeprefix("mlp.grn.")
    return f"block{stage}.{index}.{inner}"


def _key(key: str, stages: int) -> str:
    """archspec's name for one timm key; keys outside the known layout keep their name (and then fail to load)."""
    if key.startswith("stem.0."):
        return "patch_embed1.proj." + key.removeprefix("stem.0.")
    if key.startswith("stem.1."):
        return "patch_embed1.norm." + key.removeprefix("stem.1.")
    if key.startswith("head.norm."):
        return f"norm{stages}." + key.removeprefix("head.norm.")
    if key.startswith("head.fc."):
        return "head." + key.removeprefix("head.fc.")
    match = _STAGE.match(key)
    if match is None:
        return key
    return _stage_key(index(match.group(1), key) + 1, match.group(2)) or key  # archspec counts stages from 1


def convert(state: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename a timm ConvNeXt (V1 or V2) state_dict into archspec's names; 1×1 conv MLP weights become Linear
    weights and GRN parameters flat vectors."""
    stages = 1 + max((index(m.group(1), key) for key in state if (m := _STAGE.match(key))), default=0)
    renamed = {_key(key, stages): value for key, value in state.items()}
    renamed = {key: value.flatten() if _GRN.match(key) else value for key, value in renamed.items()}
    return conv1x1_to_linear(renamed, r"^block\d+\.\d+\.mlp\.fc[12]\.weight$")


LAYOUT = register_layout(
    Layout("timm-convnext", "timm ConvNeXt, ConvNeXt-V2 (timm/models/convnext.py)", detect, convert)
)
