"""timm's ``VisionTransformer`` checkpoints (ViT, DeiT) under archspec's names.

timm keeps a plain ViT as one flat stack: ``cls_token`` and ``pos_embed`` at the top, the patch
conv under ``patch_embed.proj``, the blocks under ``blocks.i`` with the token mixer as ``attn``, the
final norm as ``norm`` and the classifier as ``head``. archspec sees the same model as a one-stage
network, so every name gains the stage index 1 (``patch_embed1``, ``block1.i``, ``norm1``) and the
mixer becomes ``m``. The fused ``qkv`` projection is laid out [q | k | v] in both, so no tensor is
reshaped; only names change.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import torch

from archspec.families import Layout, Rule, StateDict, register_layout, rename

# Keys every timm VisionTransformer with a class token and fused attention has. ``cls_token`` sets it
# apart from the hierarchical timm families (PVT-v2, ConvNeXt, MetaFormer, ResNet), which have none,
# and ``blocks.0.attn.qkv`` from GFNet, whose blocks have no attention.
_REQUIRED = ("cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.attn.qkv.weight")

# Prefixes of timm models that share the keys above but carry parts a plain ViT has not: CaiT's
# class-attention blocks, and the distilled DeiT's second token and head. Their checkpoints are not
# this layout's to claim.
_FOREIGN = ("blocks_token_only.", "dist_token", "head_dist.")

_RULES: list[Rule] = [
    # The class token and position embeddings belong to archspec's patch stem.
    (r"^(cls_token|pos_embed)$", r"patch_embed1.\1"),
    (r"^patch_embed\.", "patch_embed1."),
    # The mixer is ``m`` in archspec's blocks; timm's layer scale (``ls1.gamma``, when built with
    # init_values) is archspec's ``Scale`` with its parameter ``scale``.
    (r"^blocks\.(\d+)\.attn\.", r"block1.\1.m."),
    (r"^blocks\.(\d+)\.(ls[12])\.gamma$", r"block1.\1.\2.scale"),
    (r"^blocks\.", "block1."),
    # The final norm is the (only) stage's end norm; ``head`` keeps its name.
    (r"^norm\.", "norm1."),
]


def detect(keys: Collection[str]) -> bool:
    """Whether ``keys`` look like a plain timm VisionTransformer's state_dict."""
    present = set(keys)
    if not all(key in present for key in _REQUIRED):
        return False
    return not any(key.startswith(_FOREIGN) for key in present)


def convert(state: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename a timm VisionTransformer state_dict into archspec's names (tensors unchanged)."""
    return rename(state, _RULES)


LAYOUT = register_layout(Layout("timm-vit", "timm VisionTransformer (ViT, DeiT)", detect, convert))
