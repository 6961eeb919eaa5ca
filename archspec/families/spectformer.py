"""The official SpectFormer-H checkpoints: the same names as archspec's, but for the block mixer.

The official code keeps each block's token mixer under ``attn`` where archspec says ``m``; the
class-attention blocks of ``post_network`` keep ``attn`` in both.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

import torch

from archspec.families import Layout, StateDict, register_layout, rename

_MIXER = re.compile(r"^block\d+\.\d+\.attn\.")


def detect(keys: Collection[str]) -> bool:
    return any(_MIXER.match(key) for key in keys)


def convert(state: Mapping[str, torch.Tensor]) -> StateDict:
    return rename(state, [(r"^(block\d+\.\d+)\.attn\.", r"\1.m.")])


LAYOUT = register_layout(Layout("spectformer", "official SpectFormer-H (badripatro/SpectFormers)", detect, convert))
