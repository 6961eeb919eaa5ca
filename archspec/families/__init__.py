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
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from archspec.weights_file import CheckpointError, shown

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

MAX_INDEX_DIGITS = 6
"""The most digits a stage or block number in a checkpoint key may have (a million blocks is far past any model)."""
_LONG_NUMBER = re.compile(rf"\d{{{MAX_INDEX_DIGITS + 1},}}")


def _long_index(key: str, digits: int) -> CheckpointError:
    return CheckpointError(
        f"the checkpoint key {shown(key)} holds an index of {digits:,} digits; stage and block indices have at "
        f"most {MAX_INDEX_DIGITS}",
        "AS501",
    )


def index(digits: str, key: str) -> int:
    """The stage or block number ``digits`` read from ``key``.

    Raises:
        CheckpointError: (AS501) naming the key, when the number has more than :data:`MAX_INDEX_DIGITS`
            digits or digits other than ASCII ones (``int`` reads ``"٣"`` as 3).
    """
    if len(digits) > MAX_INDEX_DIGITS:
        raise _long_index(key, len(digits))
    if not (digits.isascii() and digits.isdigit()):
        raise CheckpointError(
            f"the checkpoint key {shown(key)} holds the index {shown(digits)}, not ASCII digits", "AS501"
        )
    return int(digits)


def one_based(pattern: re.Pattern[str], key: str, template: str) -> str:
    """``key`` with the part ``pattern`` matches at its start replaced by ``template`` filled with the
    matched index plus one (references count stages from 0, archspec from 1); other keys unchanged."""
    found = pattern.match(key)
    if found is None:
        return key
    return template.format(index(found[1], key) + 1) + key[found.end() :]


def check_indices(keys: Collection[str]) -> None:
    """Refuse a key holding a number of more than :data:`MAX_INDEX_DIGITS` digits, before any layout reads it.

    Raises:
        CheckpointError: (AS501) naming the first such key.
    """
    for key in keys:
        if found := _LONG_NUMBER.search(key):
            raise _long_index(key, len(found[0]))


def _checked(
    name: str, convert: Callable[[Mapping[str, torch.Tensor]], StateDict]
) -> Callable[[Mapping[str, torch.Tensor]], StateDict]:
    """``convert``, refusing a key with an overlong index first (see :func:`check_indices`), and reporting a
    tensor it cannot reshape (a checkpoint of this layout's names with other shapes) as a CheckpointError."""

    def run(state: Mapping[str, torch.Tensor]) -> StateDict:
        check_indices(state.keys())
        try:
            return convert(state)
        except (ValueError, RuntimeError, IndexError) as exc:
            raise CheckpointError(f"cannot convert the checkpoint from the {name} layout: {exc}") from None

    return run


def register_layout(layout: Layout) -> Layout:
    """Add ``layout``; its conversion refuses keys with overlong indices (:func:`check_indices`) before it runs."""
    if layout.name in _LAYOUTS:
        raise ValueError(f"checkpoint layout {layout.name!r} is registered twice")
    layout = replace(layout, convert=_checked(layout.name, layout.convert))
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
