"""timm's ResNet checkpoints with the plain stem (``resnet18``, ``resnet50``, ...; timm 1.0.31,
``timm/models/resnet.py``). torchvision's ResNets use the same names and load the same way.

archspec's ResNet is the ``conv`` stem (Conv-BN-ReLU and a max-pool in one Sequential) followed by
stages of ``basic`` or ``bottleneck`` blocks, whose conv and norm names are timm's own:

=====================================  ==========================================
timm                                   archspec
=====================================  ==========================================
``conv1``, ``bn1``                     ``patch_embed1.conv.0``, ``patch_embed1.conv.1``
``layerN.M.{conv1,bn1,conv2,...}``     ``blockN.M.{conv1,bn1,conv2,...}``
``layerN.M.downsample.0`` (conv)       ``blockN.M.shortcut.conv``
``layerN.M.downsample.1`` (norm)       ``blockN.M.shortcut.norm``
``fc``                                 ``head``
=====================================  ==========================================

No tensor changes shape. Deep-stem variants (``resnet50d``: ``conv1.0``, ``conv1.3``, ...) and
average-pool shortcuts (``downsample.1`` a conv) are not this layout.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import torch

from archspec.families import Layout, StateDict, register_layout, rename

# A single stem conv called ``conv1`` next to ``layer1`` blocks: the plain ResNet stem. Other timm
# families have no top-level ``conv1.weight`` (deep stems nest it as ``conv1.0``) or no ``layerN``.
_REQUIRED = ("conv1.weight", "layer1.0.conv1.weight")

_RULES = [
    (r"^conv1\.", "patch_embed1.conv.0."),
    (r"^bn1\.", "patch_embed1.conv.1."),
    (r"^layer(\d+)\.(\d+)\.downsample\.0\.", r"block\1.\2.shortcut.conv."),
    (r"^layer(\d+)\.(\d+)\.downsample\.1\.", r"block\1.\2.shortcut.norm."),
    (r"^layer(\d+)\.", r"block\1."),  # the blocks' convs and norms already have archspec's names
    (r"^fc\.", "head."),
]


def detect(keys: Collection[str]) -> bool:
    """Whether ``keys`` look like a timm (or torchvision) ResNet state_dict with the plain stem."""
    present = set(keys)
    return all(key in present for key in _REQUIRED)


def convert(state: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename a timm ResNet state_dict into archspec's names (no tensor changes shape)."""
    return rename(state, _RULES)


LAYOUT = register_layout(Layout("timm-resnet", "timm ResNet (timm/models/resnet.py)", detect, convert))
