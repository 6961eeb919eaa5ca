"""timm's MetaFormer checkpoints (PoolFormer v1/v2, ConvFormer, CAFormer; ``timm/models/metaformer.py``, timm 1.0.31).

timm nests everything under ``stages.i`` (counted from 0); archspec keeps flat, 1-based
``patch_embed{i}`` / ``block{i}`` / ``norm{i}`` modules with the stem as ``patch_embed1``. timm has
no norm at the end of a stage: its ``head.norm`` (applied to the pooled vector) is archspec's end
norm of the last stage. In the conv stages timm runs its MLP and SepConv on NCHW grids with 1×1
convs, where archspec runs Linears on tokens, so those weights lose their two trailing 1×1 axes.

==============================================  =============================================
timm                                            archspec
==============================================  =============================================
``stem.{conv,norm}``                            ``patch_embed1.{proj,norm}``
``stages.i.downsample.{conv,norm}`` (i>0)       ``patch_embed{i+1}.{proj,norm}``
``stages.i.blocks.j.token_mixer.*``             ``block{i+1}.j.m.*``
``stages.i.blocks.j.layer_scale{1,2}.scale``    ``block{i+1}.j.ls{1,2}.scale``
``stages.i.blocks.j.{norm*,mlp.*,res_scale*}``  ``block{i+1}.j.{norm*,mlp.*,res_scale*}``
``head.norm``                                   ``norm{last}``
``head.fc`` (Linear)                            ``head``
``head.fc.{fc1,norm,fc2}`` (MlpHead)            ``head.{fc1,norm,fc2}``
==============================================  =============================================
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

import torch

from archspec.families import Layout, Rule, StateDict, conv1x1_to_linear, index, one_based, register_layout, rename

# Every MetaFormer has a conv stem named ``stem.conv`` (ConvNeXt's stem is ``stem.0``, PVTv2's
# ``patch_embed``) and pre-norm blocks with ``norm1``, ``norm2`` and ``mlp`` under ``stages.0.blocks.0``.
_REQUIRED = (
    "stem.conv.weight",
    "stages.0.blocks.0.norm1.weight",
    "stages.0.blocks.0.norm2.weight",
    "stages.0.blocks.0.mlp.fc1.weight",
)
# And at least one block part named the MetaFormer way. A pooling mixer has no parameters, so
# PoolFormer v1 shows only its layer scales and v2 only its residual scales (in stages 2 and 3).
_BLOCK_PART = re.compile(r"^stages\.\d+\.blocks\.\d+\.(token_mixer\.|layer_scale[12]\.scale$|res_scale[12]\.scale$)")

_STAGE = re.compile(r"^stages\.(\d+)\.")

_RULES: list[Rule] = [
    (r"^stem\.conv\.", "patch_embed1.proj."),
    (r"^stem\.norm\.", "patch_embed1.norm."),
    # Stage numbers are 1-based by the time these rules run (see ``convert``).
    (r"^stages\.(\d+)\.downsample\.conv\.", r"patch_embed\1.proj."),
    (r"^stages\.(\d+)\.downsample\.norm\.", r"patch_embed\1.norm."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.token_mixer\.", r"block\1.\2.m."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.layer_scale([12])\.", r"block\1.\2.ls\3."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.", r"block\1.\2."),
    # MlpHead's parts, then a plain Linear classifier.
    (r"^head\.fc\.(fc1|norm|fc2)\.", r"head.\1."),
    (r"^head\.fc\.", "head."),
]

# The 1×1 convs of the NCHW stages: the MLP everywhere, SepConv's pointwise convs. (CAFormer's
# attention stages already hold Linear weights; ``conv1x1_to_linear`` leaves those alone.)
_POINTWISE = r"^block\d+\.\d+\.(mlp\.fc[12]|m\.pwconv[12])\.weight$"


def detect(keys: Collection[str]) -> bool:
    """Whether ``keys`` look like a timm MetaFormer state_dict."""
    present = set(keys)
    return all(key in present for key in _REQUIRED) and any(_BLOCK_PART.match(key) for key in present)


def _one_based(key: str) -> str:
    """``stages.i.`` → ``stages.{i+1}.``: archspec counts stages from 1."""
    return one_based(_STAGE, key, "stages.{}.")


def convert(state: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename a timm MetaFormer state_dict into archspec's names and flatten its 1×1 conv weights."""
    stages = 1 + max((index(m.group(1), key) for key in state if (m := _STAGE.match(key))), default=0)
    renumbered = {_one_based(key): value for key, value in state.items()}
    # timm's final norm sits in its head; in archspec it is the last stage's end norm.
    renamed = rename(renumbered, [(r"^head\.norm\.", f"norm{stages}."), *_RULES])
    return conv1x1_to_linear(renamed, _POINTWISE)


LAYOUT = register_layout(
    Layout("timm-metaformer", "timm MetaFormer (PoolFormer v1/v2, ConvFormer, CAFormer)", detect, convert)
)
