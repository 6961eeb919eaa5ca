"""Generated from the registry: changing any spec field of any component shows up in ``diff``, by name.

For each registered component, in the tiny spec that holds it (as the component tests place it), each
field is moved off its value to the first candidate that still plans; the diff against the unchanged
spec must name the field (or, for a component slot, the field that holds it).
"""

from __future__ import annotations

import copy
import types
import typing
from typing import Any

import pytest
from pydantic import BaseModel
from test_components import ALL, _with_component

import archspec
from archspec import registry
from archspec.diff import diff_plans
from archspec.errors import ArchspecError
from archspec.specbase import ComponentSpec

SKIPPED = {"type": "the component's name: a type change is its own phrase", "blocks": "a mixer pattern's run length"}


def _candidates(annotation: Any, current: Any) -> list[Any]:
    """Values other than ``current`` to try for a field of this annotation, as JSON data."""
    origin = typing.get_origin(annotation)
    members = typing.get_args(annotation) if origin in (typing.Union, types.UnionType) else (annotation,)
    options: list[Any] = []
    for member in members:
        if typing.get_origin(member) is typing.Annotated:  # a component slot
            member = typing.get_args(member)[0]
        origin = typing.get_origin(member)
        if origin is typing.Literal:
            options += typing.get_args(member)
        elif isinstance(member, type) and issubclass(member, ComponentSpec):  # a component slot: another type
            options += [
                {"type": other} for other in registry.names(member.kind) if getattr(current, "type", None) != other
            ]
        elif origin is dict and isinstance(current, dict):  # named components: one of them another type
            for key, value in current.items():
                options += [
                    {**_json(current), key: {"type": other}}
                    for other in registry.names(value.kind)
                    if other != value.type
                ]
        elif member is bool:
            options.append(not current)
        elif member is int:
            base = current if isinstance(current, int) else 1
            options += [base + 1, base * 2, 2, 3, 4, 7, 1, max(base - 1, 1)]
        elif member is float:
            base = current if isinstance(current, float | int) and current else 0.5
            options += [base * 2, base / 2, 0.5, 0.25, 2.0, 1e-5]
        elif isinstance(member, type) and issubclass(member, BaseModel):
            if current is None:
                options.append({})
            elif isinstance(current, member):  # a record: move one of its fields
                for name, info in member.model_fields.items():
                    for value in _candidates(info.annotation, getattr(current, name)):
                        options.append({**current.model_dump(mode="json"), name: value})
        elif member is types.NoneType and current is not None:
            options.append(None)
        elif origin is tuple and isinstance(current, tuple) and current:
            options += [tuple(reversed(current)), current[:-1], (*current, current[-1])]
    return [_json(option) for option in options if _json(option) != _json(current)]


def _json(value: Any) -> Any:
    if isinstance(value, ComponentSpec):
        return {"type": value.type, **value.model_dump(mode="json")}
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {key: _json(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_json(item) for item in value]
    return value


def _one_stage(parts: dict[str, Any], flow: list[list[Any]]) -> dict[str, Any]:
    """The tiny spec's changes for one spectral stage of 8 channels whose block is this flow."""
    block = {"type": "flow", "parts": parts, "flow": flow}
    return {"stages": [{"dim": 8, "depth": 1, "mixer": {"type": "spectral"}, "ffn": {"type": "mlp"}, "block": block}]}


CONTEXT: dict[tuple[str, str, str], dict[str, Any]] = {
    # A class token needs mixers and a head that read tokens with one in front: a one-stage ViT.
    ("stem", "patch", "cls_token"): {
        "stages": [{"dim": 8, "depth": 1, "mixer": {"type": "attention", "heads": 2}, "ffn": {"type": "mlp"}}],
        "head": {"type": "pool"},
    },
    # A part with a mixer (an FFN) of its own, beside the one that takes the stage's.
    ("part", "mixer", "mixer"): _one_stage(
        {"m": "mixer", "own": {"type": "mixer", "mixer": "identity"}, "mlp": "ffn"},
        [[{"sum": [["m"], ["own"]]}, "add"], ["mlp", "add"]],
    ),
    ("part", "ffn", "ffn"): _one_stage(
        {"m": "mixer", "mlp": "ffn", "own": {"type": "ffn", "ffn": "mlp"}},
        [["m", "add"], ["mlp", "add"], ["own", "add"]],
    ),
    # An attention that widens (a pooling first block's, CoAtNet) feeds a branch that is not added back.
    ("mixer", "attention", "out"): {
        "stages": [
            {
                "dim": 8,
                "depth": 1,
                "mixer": {"type": "attention", "heads": 2},
                "ffn": {"type": "mlp"},
                "block": {"type": "flow", "parts": {"m": "mixer", "mlp": "ffn"}, "flow": [["m"], ["mlp", "add"]]},
            }
        ]
    },
    # The example's shifted windows take no grid partition: an unshifted stage.
    ("mixer", "window_attention", "partition"): {
        "stages": [{"dim": 8, "depth": 1, "mixer": {"type": "window_attention", "window": 2}, "ffn": {"type": "mlp"}}]
    },
    # A conv head reads the tokens before the mean, so the last stage's norm goes before it.
    ("head", "pool", "conv"): {"head": {"type": "pool", "norm": "before_pool"}},
}
"""Fields whose every other value needs a spec around the component unlike the component tests' tiny one."""

VALUES: dict[tuple[str, str, str], list[Any]] = {
    ("head", "pool", "conv"): [{"channels": 16}],  # its width has no default
    ("block", "flow", "preset"): ["gfnet", "convnext"],  # a free-form name: the forms it may take
    ("mixer", "token_mlp", "tokens"): [64],  # the only count that plans: the first stage's 8×8 grid
    ("mixer", "token_linear", "tokens"): [64],
    ("mixer", "attention", "out"): [16],
}
"""Candidate values for fields whose annotation does not say them."""

FIELDS = [
    (kind, name, field) for kind, name in ALL for field in registry.get(kind, name).model_fields if field not in SKIPPED
]


def _set(data: Any, path: tuple[Any, ...], value: Any) -> None:
    """Set ``path`` in the spec as written, opening defaulted components as mappings (their defaults fill in)."""
    for key in path[:-1]:
        if isinstance(key, int) and isinstance(data, dict):
            continue  # one mixer written for the whole stage: the spec holds it as a list of one
        if isinstance(data, dict) and isinstance(data.get(key), str):
            data[key] = {"type": data[key]}  # a component written by its name alone
        data = data[key] if isinstance(data, list) else data.setdefault(key, {})
    data[path[-1]] = value


@pytest.mark.parametrize(("kind", "name", "field"), FIELDS, ids=[f"{k}-{n}-{f}" for k, n, f in FIELDS])
def test_every_field_change_is_named_by_diff(kind, name, field):
    cls = registry.get(kind, name)
    raw = _with_component(kind, name) | CONTEXT.get((kind, name, field), {})
    spec = archspec.validate(raw)
    default = cls.model_fields[field].get_default(call_default_factory=True)
    path, component = _place(spec, cls, field, default)
    base = archspec.plan(spec)
    tried = []
    candidates = VALUES.get((kind, name, field)) or _candidates(
        cls.model_fields[field].annotation, getattr(component, field)
    )
    for value in candidates:
        changed = copy.deepcopy(raw)
        _set(changed, (*path, field), value)
        try:
            other = archspec.plan(archspec.validate(changed))
        except ArchspecError as exc:
            tried.append(f"{value!r}: {str(exc).splitlines()[0]}")
            continue
        changes = diff_plans(base, other).changes
        if not changes and (other.params, other.flops) == (base.params, base.flops):
            tried.append(f"{value!r}: no change")  # maybe the same model (an explicit act: gelu where gelu is taken)
            continue
        phrases = " ".join(line for change in changes for line in change.what)
        # Named components (a flow's parts) are reported under the name that changed.
        old = _json(getattr(component, field))
        names = [k for k in value if value[k] != old.get(k)] if isinstance(old, dict) and "type" not in old else []
        if len(path) > 1 and path[-2] == "parts":
            names.append(path[-1])  # a part's phrases go by its name
        assert field in phrases or any(name in phrases for name in names), (value, phrases)
        return
    pytest.fail(f"no value of {field!r} plans another model: " + "; ".join(tried))


def _place(spec: Any, cls: type, field: str, default: Any) -> tuple[tuple[Any, ...], Any]:
    """Where to change ``field``: the first component of ``cls`` that sets it away from its default, else the first."""
    found = list(_every(spec, cls))
    assert found
    return next(((p, c) for p, c in found if getattr(c, field) != default), found[0])


def _every(value: Any, cls: type, path: tuple[Any, ...] = ()) -> Any:
    """Every ``cls`` instance inside a validated spec, with its key path."""
    if isinstance(value, cls):
        yield path, value
    if isinstance(value, BaseModel):
        items: Any = ((name, getattr(value, name)) for name in type(value).model_fields)
    elif isinstance(value, dict):
        items = value.items()
    elif isinstance(value, tuple):
        items = enumerate(value)
    else:
        return
    for key, item in items:
        yield from _every(item, cls, (*path, key))
