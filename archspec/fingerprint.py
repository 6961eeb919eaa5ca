"""Fingerprints: short hashes that say whether two specs, or two built models, are the same.

The spec fingerprint hashes what the user chose: the resolved spec (after ``extends`` and ``--set``)
with every value that equals its default left out. Two files that spell the same model differently
share it, and a new optional field added to the format later leaves every existing fingerprint as it
was. The structure fingerprint hashes a built model's parameter and buffer names, shapes and dtypes,
so it changes whenever a checkpoint would stop fitting. Checkpoints store both.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import yaml

from archspec.errors import KeyPath, format_path

if TYPE_CHECKING:
    from torch import nn

    from archspec.spec import ModelSpec


def canonical(spec: ModelSpec) -> dict[str, Any]:
    """The resolved spec as plain data, every default written out."""
    return spec.model_dump(mode="json")


def chosen(spec: ModelSpec) -> dict[str, Any]:
    """The resolved spec as plain data, without the values that equal their defaults (types are kept)."""
    return spec.model_dump(mode="json", exclude_defaults=True)


class _Dumper(yaml.SafeDumper):
    """Writes leaf mappings and lists on one line (``size: [224, 224]``), the way specs are written by hand."""

    def represent_dict(self, data: Any) -> yaml.Node:  # type: ignore[override]
        node = super().represent_dict(data)
        node.flow_style = all(not isinstance(v, dict | list) for v in data.values())
        return node

    def represent_list(self, data: Any) -> yaml.Node:  # type: ignore[override]
        node = super().represent_list(data)
        node.flow_style = all(not isinstance(v, dict | list) for v in data)
        return node


_Dumper.add_representer(dict, _Dumper.represent_dict)
_Dumper.add_representer(list, _Dumper.represent_list)


def shown(spec: ModelSpec) -> dict[str, Any]:
    """The resolved spec as ``archspec show`` prints it: :func:`canonical`, less each stage's default FFN
    where none of the stage's blocks has one (a ResNet's, a MobileNet's).

    A stage always holds an FFN (the default ``mlp`` when none is written), but one written out for
    blocks without an FFN is a contradiction the planner rejects, so the printed spec leaves it out;
    loaded back, the stage gets the same default, and the spec, its fingerprint and its model are the same.
    """
    data = canonical(spec)
    for stage, plain in zip(spec.stages, data["stages"], strict=True):
        blocks = [stage.block] if stage.each is None else [edit.block or stage.block for edit in stage.each]
        if "ffn" not in stage.model_fields_set and not any(block.uses_ffn for block in blocks):
            del plain["ffn"]
    return data


def canonical_yaml(spec: ModelSpec) -> str:
    """The resolved spec as YAML that loads back to the same spec, and plans to the same model."""
    return yaml.dump(shown(spec), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)


def _digest(lines: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def spec_fingerprint(spec: ModelSpec) -> str:
    return _digest([json.dumps(chosen(spec), sort_keys=True, separators=(",", ":"))])


def structure_fingerprint(model: nn.Module) -> str:
    state = model.state_dict()
    return _digest(f"{name} {tuple(t.shape)} {t.dtype}" for name, t in sorted(state.items()))


def differences(a: Any, b: Any, path: KeyPath = ()) -> list[str]:
    """Where two canonical specs differ, as ``key.path: a → b`` lines."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return [line for key in dict.fromkeys([*a, *b]) for line in differences(a.get(key), b.get(key), (*path, key))]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [line for i, (x, y) in enumerate(zip(a, b, strict=True)) for line in differences(x, y, (*path, i))]
    return [] if a == b else [f"{format_path(path)}: {json.dumps(a)} → {json.dumps(b)}"]
