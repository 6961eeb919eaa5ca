"""timm's ``MlpMixer`` checkpoints (MLP-Mixer, ResMLP) under archspec's names.

timm keeps these isotropic all-MLP models as one flat stack: the patch conv under ``stem.proj``,
the blocks under ``blocks.i``, the final norm as ``norm`` and the classifier as ``head``. archspec
sees a one-stage network, so the stem becomes ``patch_embed1``, the blocks ``block1.i`` and the norm
``norm1``. Inside a block:

- MLP-Mixer (``MixerBlock``): the token-mixing MLP ``mlp_tokens`` is the mixer ``m`` (``fc1``,
  ``fc2`` unchanged), the channel MLP ``mlp_channels`` is the FFN ``mlp``;
- ResMLP (``ResBlock``): the token Linear ``linear_tokens`` is the mixer's ``m.fc``, the channel MLP
  ``mlp_channels`` is ``mlp``, and the layer scales ``ls1``/``ls2`` (bare parameters in timm) are the
  parameters ``scale`` of archspec's ``ls1``/``ls2``.

Norms (LayerNorm, or ResMLP's ``Affine`` with ``alpha``/``beta``) keep their names and shapes; no
tensor is reshaped.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import torch

from archspec.families import Layout, Rule, StateDict, register_layout, rename

# The patch conv under ``stem.proj`` with blocks whose channel MLP is ``mlp_channels``: no other timm
# family names either, so the two together claim exactly MlpMixer's checkpoints.
_REQUIRED = ("stem.proj.weight", "blocks.0.mlp_channels.fc1.weight")

_RULES: list[Rule] = [
    (r"^stem\.", "patch_embed1."),
    (r"^blocks\.(\d+)\.mlp_tokens\.", r"block1.\1.m."),
    (r"^blocks\.(\d+)\.linear_tokens\.", r"block1.\1.m.fc."),
    (r"^blocks\.(\d+)\.mlp_channels\.", r"block1.\1.mlp."),
    (r"^blocks\.(\d+)\.(ls[12])$", r"block1.\1.\2.scale"),
    (r"^blocks\.", "block1."),
    (r"^norm\.", "norm1."),
]


def detect(keys: Collection[str]) -> bool:
    """Whether ``keys`` look like a timm MlpMixer's state_dict (MLP-Mixer or ResMLP)."""
    present = set(keys)
    return all(key in present for key in _REQUIRED)


def convert(state: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename a timm MlpMixer state_dict into archspec's names (tensors unchanged)."""
    return rename(state, _RULES)


LAYOUT = register_layout(Layout("timm-mixer", "timm MlpMixer (MLP-Mixer, ResMLP)", detect, convert))
