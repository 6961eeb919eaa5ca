"""timm's EfficientNet and MobileNetV3 classes (timm 1.0.31, ``timm/models/efficientnet.py`` and
``mobilenetv3.py``; checked on ``efficientnet_b0``, ``mobilenetv2_100`` and ``mobilenetv3_large_100``).

Both keep a single stem conv and its norm at the top, the stages as ``blocks.i`` (counted from 0) and
a head after them. archspec's blocks (``dsconv``, ``mbconv``, and a ``flow`` block for MobileNetV3's
last 1×1 conv) use timm's own part names, so the blocks only move to 1-based stages:

=====================================  =============================================================
timm                                   archspec
=====================================  =============================================================
``conv_stem``, ``bn1``                 ``patch_embed1.conv.0``, ``patch_embed1.conv.1``
``blocks.i.j.*``                       ``block{i+1}.j.*``
``conv_head``, ``bn2`` (EfficientNet)  ``conv_head.conv``, ``conv_head.norm`` (head ``conv``)
``conv_head`` (MobileNetV3)            ``head.fc1`` (head ``mlp``: a 1×1 conv on the pooled vector)
``classifier``                         ``head``, or ``head.fc2`` after an ``mlp``
=====================================  =============================================================

The only reshape: MobileNetV3's ``conv_head`` runs after the pooling, so its (out, in, 1, 1) weight
becomes the (out, in) weight of a Linear. Which head a checkpoint has is told by ``bn2``: EfficientNet
and MobileNetV2 normalise after their conv head, MobileNetV3 does not.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

import torch

from archspec.families import Layout, StateDict, conv1x1_to_linear, one_based, register_layout, rename

# The stem conv named ``conv_stem`` beside stages named ``blocks.i.j``: no other timm family names them so.
_REQUIRED = ("conv_stem.weight", "blocks.0.0.bn1.weight")
_BLOCK = re.compile(r"^blocks\.(\d+)\.")

_STEM = [(r"^conv_stem\.", "patch_embed1.conv.0."), (r"^bn1\.", "patch_embed1.conv.1.")]
_CONV_HEAD = [(r"^conv_head\.", "conv_head.conv."), (r"^bn2\.", "conv_head.norm."), (r"^classifier\.", "head.")]
_MLP_HEAD = [(r"^conv_head\.", "head.fc1."), (r"^classifier\.", "head.fc2.")]


def detect(keys: Collection[str]) -> bool:
    """Whether ``keys`` look like a timm EfficientNet / MobileNetV2 / MobileNetV3 state_dict."""
    present = set(keys)
    return all(key in present for key in _REQUIRED)


def convert(state: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename a timm EfficientNet or MobileNetV3 state_dict into archspec's names."""
    normed_head = "bn2.weight" in state
    renamed = rename(state, _STEM + (_CONV_HEAD if normed_head else _MLP_HEAD))
    renamed = {one_based(_BLOCK, key, "block{}."): value for key, value in renamed.items()}
    return renamed if normed_head else conv1x1_to_linear(renamed, r"^head\.fc1\.weight$")


LAYOUT = register_layout(
    Layout("timm-efficientnet", "timm EfficientNet / MobileNetV3 (timm/models/efficientnet.py)", detect, convert)
)
