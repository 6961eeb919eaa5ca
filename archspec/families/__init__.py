"""Checkpoint layouts of reference implementations, one module per family, and how to convert them.

A family module registers a :class:`Layout`: a test that recognises a state_dict saved by the
reference code, and a function that renames (and, where the two layouts differ, reshapes) its
tensors into archspec's names. Loading tries the layouts that recognise a checkpoint and keeps the
conversion that fits the model. Generic code never names a family; a family never touches generic code.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

StateDict = dict[str, "torch.Tensor"]


@dataclass(frozen=True)
class Layout:
    """How one reference implementation names its tensors.

    Attributes:
        name: short name (``timm-vit``), shown when a checkpoint is loaded.
        reference: the implementation it comes from, in words.
        detect: whether a set of keys looks like this layout.
        convert: the reference's state_dict → archspec's names and shapes.
    """

    name: str
    reference: str
    detect: Callable[[Collection[str]], bool]
    convert: Callable[[Mapping[str, torch.Tensor]], StateDict]


_LAYOUTS: dict[str, Layout] = {}


def register_layout(layout: Layout) -> Layout:
    if layout.name in _LAYOUTS:
        raise ValueError(f"checkpoint layout {layout.name!r} is registered twice")
    _LAYOUTS[layout.name] = layout
    return layout


def layouts() -> list[Layout]:
    """Every registered layout (the built-in family modules are imported on first use)."""
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
    return list(_LAYOUTS.values())


def get_layout(name: str) -> Layout:
    known = {layout.name: layout for layout in layouts()}
    if name not in known:
        raise KeyError(f"unknown checkpoint layout {name!r} (known: {', '.join(sorted(known))})")
    return known[name]


Rule = tuple[str, str]
"""A renaming rule: a regular expression over a key and its replacement (``re.sub`` syntax)."""


def rename(state: Mapping[str, torch.Tensor], rules: list[Rule]) -> StateDict:
    """Apply the first matching rule to every key; keys no rule matches keep their name."""
    compiled = [(re.compile(pattern), replacement) for pattern, replacement in rules]
    result: StateDict = {}
    for key, value in state.items():
        for pattern, replacement in compiled:
            if pattern.search(key):
                key = pattern.sub(replacement, key)
                break
        result[key] = value
    return result


def conv1x1_to_linear(state: StateDict, pattern: str) -> StateDict:
    """Flatten (out, in, 1, 1) conv weights under keys matching ``pattern`` to (out, in) Linear weights."""
    compiled = re.compile(pattern)
    return {
        key: value.flatten(1) if compiled.search(key) and value.ndim == 4 and value.shape[2:] == (1, 1) else value
        for key, value in state.items()
    }
