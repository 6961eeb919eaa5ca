"""timm's RegNet checkpoints (timm 1.0.31, ``timm/models/regnet.py``; checked on ``regnety_004``).

timm names the stages ``s1`` … ``s4`` and their blocks ``b1``, ``b2``, … (both counted from 1), and
wraps each conv with its norm (``conv1.conv``, ``conv1.bn``). archspec's RegNet is the ``conv`` stem
followed by stages of ``bottleneck`` blocks, whose parts are flat and whose blocks count from 0:

=========================================  ==========================================
timm                                       archspec
=========================================  ==========================================
``stem.conv``, ``stem.bn``                 ``patch_embed1.conv.0``, ``patch_embed1.conv.1``
``sI.bJ.convK.conv``, ``sI.bJ.convK.bn``   ``blockI.(J-1).convK``, ``blockI.(J-1).bnK``
``sI.bJ.se.fc1``, ``sI.bJ.se.fc2``         ``blockI.(J-1).se.conv_reduce``, ``.se.conv_expand``
``sI.bJ.downsample.conv``, ``.bn``         ``blockI.(J-1).shortcut.conv``, ``.shortcut.norm``
``head.fc``                                ``head``
=========================================  ==========================================

No tensor changes shape. Models with ``final_conv`` (``linear_out`` variants) or average-pool
shortcuts are not this layout.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

import torch

from archspec.families import Layout, StateDict, index, register_layout

# A stem conv wrapped as ``stem.conv`` next to blocks named ``s1.b1``: no other timm family counts its
# stages and blocks that way.
_REQUIRED = ("stem.conv.weight", "s1.b1.conv1.conv.weight")
_BLOCK = re.compile(r"^s(\d+)\.b(\d+)\.(.*)$")
_PARTS = [
    (re.compile(r"^conv(\d+)\.conv\."), r"conv\1."),
    (re.compile(r"^conv(\d+)\.bn\."), r"bn\1."),
    (re.compile(r"^se\.fc1\."), "se.conv_reduce."),
    (re.compile(r"^se\.fc2\."), "se.conv_expand."),
    (re.compile(r"^downsample\.conv\."), "shortcut.conv."),
    (re.compile(r"^downsample\.bn\."), "shortcut.norm."),
]


def detect(keys: Collection[str]) -> bool:
    """Whether ``keys`` look like a timm RegNet state_dict."""
    present = set(keys)
    return all(key in present for key in _REQUIRED)


def _block_key(rest: str) -> str:
    """archspec's name for a key inside one block (``conv2.bn.weight`` → ``bn2.weight``)."""
    for pattern, replacement in _PARTS:
        if pattern.search(rest):
            return pattern.sub(replacement, rest)
    return rest


def _key(key: str) -> str:
    """archspec's name for one timm key; keys outside the known layout keep their name (and then fail to load)."""
    if key.startswith("stem.conv."):
        return "patch_embed1.conv.0." + key.removeprefix("stem.conv.")
    if key.startswith("stem.bn."):
        return "patch_embed1.conv.1." + key.removeprefix("stem.bn.")
    if key.startswith("head.fc."):
        return "head." + key.removeprefix("head.fc.")
    match = _BLOCK.match(key)
    if match is None:
        return key
    stage, block, rest = match.groups()  # archspec counts a stage's blocks from 0
    return f"block{index(stage, key)}.{index(block, key) - 1}.{_block_key(rest)}"


def convert(state: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename a timm RegNet state_dict into archspec's names (no tensor changes shape)."""
    return {_key(key): value for key, value in state.items()}


LAYOUT = register_layout(Layout("timm-regnet", "timm RegNet (timm/models/regnet.py)", detect, convert))
