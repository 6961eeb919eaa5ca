"""Spec composition: ``extends:`` bases and ``--set`` overrides, with every value's origin kept.

Merge rules (base ← child):

- mappings merge key by key, recursively, except that a mapping naming a different component
  ``type`` than the base's replaces it whole (the base type's fields rarely fit the new one);
- a list is replaced whole, unless the child writes a mapping with integer keys, which overrides
  those items only (``stages: {2: {depth: 8}}``);
- ``null`` deletes the key, so the default applies again.

``extends`` names a YAML file relative to the spec that writes it, or a shipped spec by name
(``extends: spectformer-h-s``). A base must lie inside the directory of the spec being loaded, the
current directory, or the shipped specs directory, so a spec cannot make archspec read arbitrary
files. Overrides are applied last, in order; setting a component's ``type`` to a different value
starts that component from its defaults, since the old type's fields rarely fit the new one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archspec.errors import ArchspecError, KeyPath, Position, SpecFileError, format_path
from archspec.loader import parse_yaml, read_spec_file

SHIPPED_SPECS = Path(__file__).resolve().parent.parent / "specs"
"""The specs that come with archspec (present in a source checkout or editable install)."""

SHIPPED_FOLDERS = ("", "zoo", "variants")
"""Where shipped specs lie under :data:`SHIPPED_SPECS`: the SpectFormers, the zoo of reference models, the variants."""


def shipped_specs() -> list[Path]:
    """Every shipped spec file, the top-level ones first."""
    return [path for folder in SHIPPED_FOLDERS for path in sorted((SHIPPED_SPECS / folder).glob("*.yaml"))]


def shipped_path(name_or_path: str | Path) -> Path:
    """``name_or_path`` as a path, or the shipped spec of that name (``resnet50``) when no such file exists."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    return next((shipped for shipped in shipped_specs() if shipped.stem == str(name_or_path)), path)


MAX_EXTENDS_DEPTH = 16


class OverrideError(ArchspecError):
    """A ``--set`` argument is malformed."""

    code = "AS601"


@dataclass(frozen=True)
class Override:
    """One ``--set key.path=value``: the parsed path and YAML-typed value, and the text as written."""

    path: KeyPath
    value: Any
    text: str

    @property
    def position(self) -> Position:
        return Position(f"--set {self.text}", 0, 0)


def parse_override(text: str) -> Override:
    """Parse ``stages.2.depth=8`` (or ``stages[2].depth=8``); the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise OverrideError(f"--set {text}: expected KEY.PATH=VALUE, e.g. --set stages.2.depth=8")
    if re.search(r"\.\.|^\.|\.$|\[\]", key.strip()):
        raise OverrideError(f"--set {text}: {key!r} has an empty key (two dots in a row, or a dot at an end)")
    parts = [p for p in re.split(r"\.|\[|\]", key.strip()) if p != ""]
    if not parts or any(not re.fullmatch(r"[A-Za-z0-9_$-]+", p) for p in parts):
        raise OverrideError(f"--set {text}: {key!r} is not a key path like stages.2.depth")
    path = tuple(int(p) if p.isdigit() else p for p in parts)
    value = parse_yaml(raw, f"--set {text}")[0] if raw.strip() else None
    return Override(path, value, text)


def load_document(path: str | Path, overrides: Sequence[Override] = ()) -> tuple[Any, dict[KeyPath, Position]]:
    """Read a spec with its bases merged in and overrides applied; returns data and key positions."""
    path = Path(path)
    allowed = [path.resolve().parent, Path.cwd().resolve(), SHIPPED_SPECS]
    data, positions = _load(path, (), allowed)
    for override in overrides:
        if not isinstance(data, dict):
            break
        _apply(data, positions, override)
    return data, positions


def _load(path: Path, chain: tuple[Path, ...], allowed: list[Path]) -> tuple[Any, dict[KeyPath, Position]]:
    data, source = read_spec_file(path)
    positions = dict(source.positions)
    if not isinstance(data, dict) or "extends" not in data:
        return data, positions
    where = positions[("extends",)]
    reference = data.pop("extends")
    _drop(positions, ("extends",))
    if not isinstance(reference, str):
        raise SpecFileError(where, "extends: expected a file name or a shipped spec name", "AS104")
    base = _find_base(reference, path, allowed, where)
    resolved = (*chain, path.resolve())
    if base.resolve() in resolved:
        cycle = " → ".join(p.name for p in (*resolved, base.resolve()))
        raise SpecFileError(where, f"extends: cycle {cycle}", "AS104")
    if len(resolved) > MAX_EXTENDS_DEPTH:
        raise SpecFileError(where, f"extends: more than {MAX_EXTENDS_DEPTH} levels of bases", "AS104")
    base_data, base_positions = _load(base, resolved, allowed)
    if not isinstance(base_data, dict):
        raise SpecFileError(where, f"extends: {base} does not hold a mapping", "AS104")
    _merge(base_data, base_positions, data, positions, (), ())
    base_positions[()] = positions[()]
    return base_data, base_positions


def _find_base(reference: str, spec: Path, allowed: list[Path], where: Position) -> Path:
    candidates = [spec.parent / reference]
    if "/" not in reference and "\\" not in reference:
        name = reference if reference.endswith((".yaml", ".yml")) else f"{reference}.yaml"
        candidates += [SHIPPED_SPECS / folder / name for folder in SHIPPED_FOLDERS]
    for candidate in candidates:
        if candidate.is_file():
            resolved = candidate.resolve()
            if not any(resolved.is_relative_to(root) for root in allowed):
                raise SpecFileError(
                    where,
                    f"extends: {reference} lies outside the spec's directory, the current directory and the "
                    "shipped specs",
                    "AS104",
                )
            if resolved.suffix not in (".yaml", ".yml"):
                raise SpecFileError(where, f"extends: {reference} is not a .yaml file", "AS104")
            return candidate
    shipped = ", ".join(sorted(p.stem for p in shipped_specs()))
    raise SpecFileError(where, f"extends: no such file {reference!r} (shipped specs: {shipped})", "AS104")


def _drop(positions: dict[KeyPath, Position], prefix: KeyPath) -> None:
    for key in [k for k in positions if k[: len(prefix)] == prefix]:
        del positions[key]


def _adopt(
    positions: dict[KeyPath, Position], source: dict[KeyPath, Position], source_prefix: KeyPath, target: KeyPath
) -> None:
    """Copy the positions under ``source_prefix`` to ``target``, replacing whatever was there."""
    _drop(positions, target)
    for key, position in source.items():
        if key[: len(source_prefix)] == source_prefix:
            positions[target + key[len(source_prefix) :]] = position


def _retyped(base: dict[str, Any], child: dict[str, Any]) -> bool:
    """A child mapping that names another component ``type`` replaces the base's: the old type's fields rarely fit."""
    return "type" in child and "type" in base and child["type"] != base["type"]


def _merge(
    base: dict[str, Any],
    base_positions: dict[KeyPath, Position],
    child: dict[str, Any],
    child_positions: dict[KeyPath, Position],
    child_path: KeyPath,
    path: KeyPath,
) -> None:
    for key, value in child.items():
        here, there = (*path, key), (*child_path, key)
        current = base.get(key)
        if value is None:
            base.pop(key, None)
            _drop(base_positions, here)
        elif isinstance(value, dict) and isinstance(current, dict) and not _retyped(current, value):
            base_positions[here] = child_positions[there]
            _merge(current, base_positions, value, child_positions, there, here)
        elif isinstance(value, dict) and isinstance(current, list) and value and all(k.isdigit() for k in value):
            for index_text, item in value.items():
                index = int(index_text)
                item_there = (*there, index_text)
                if index >= len(current):
                    raise SpecFileError(
                        child_positions[item_there],
                        f"{format_path(here)}: index {index} is out of range (the base has {len(current)} items)",
                        "AS104",
                    )
                if isinstance(item, dict) and isinstance(current[index], dict) and not _retyped(current[index], item):
                    _merge(current[index], base_positions, item, child_positions, item_there, (*here, index))
                else:
                    current[index] = item
                    _adopt(base_positions, child_positions, item_there, (*here, index))
        else:
            base[key] = value
            _adopt(base_positions, child_positions, there, here)


def _apply(data: dict[str, Any], positions: dict[KeyPath, Position], override: Override) -> None:
    node: Any = data
    walked: KeyPath = ()
    for part in override.path[:-1]:
        walked = (*walked, part)
        if isinstance(node, dict):
            if str(part) not in node:  # a mapping this --set creates: its problems are the --set's
                positions[(*walked[:-1], str(part))] = override.position
            node = node.setdefault(str(part), {})
        elif isinstance(node, list) and isinstance(part, int):
            if part >= len(node):
                raise OverrideError(f"--set {override.text}: {format_path(walked)}: index {part} is out of range "
                                    f"({format_path(walked[:-1])} has {len(node)} items)")  # fmt: skip
            node = node[part]
        else:
            raise OverrideError(f"--set {override.text}: {format_path(walked[:-1])} holds no keys to set")
    last = override.path[-1]
    path = tuple(p if isinstance(p, int) and isinstance(_at(data, override.path[:i]), list) else str(p)
                 for i, p in enumerate(override.path))  # fmt: skip
    if isinstance(node, list):
        if not isinstance(last, int) or last >= len(node):
            raise OverrideError(f"--set {override.text}: {format_path(override.path)} is not an item of the list")
        node[last] = override.value
    elif isinstance(node, dict):
        key = str(last)
        if override.value is None:
            node.pop(key, None)
        elif key == "type" and node.get("type") not in (None, override.value):
            _retype(node, positions, path[:-1], override.value)
        else:
            node[key] = override.value
    else:
        raise OverrideError(f"--set {override.text}: {format_path(override.path[:-1])} holds no keys to set")
    _drop(positions, path)
    positions[path] = override.position


def _retype(node: dict[str, Any], positions: dict[KeyPath, Position], prefix: KeyPath, new_type: Any) -> None:
    """Give the component at ``prefix`` a new ``type``: it starts from the new type's defaults, keeping
    only what earlier ``--set`` arguments wrote into it (the spec's fields were for the old type), so
    the order of ``--set`` arguments does not matter."""
    from_command_line = {
        key: value
        for key, value in node.items()
        if key != "type" and positions.get((*prefix, key), Position("", 0, 0)).file.startswith("--set ")
    }
    kept = {
        path: position
        for path, position in positions.items()
        if path[: len(prefix) + 1] in {(*prefix, key) for key in from_command_line}
    }
    node.clear()
    _drop(positions, prefix)
    node.update(from_command_line, type=new_type)
    positions.update(kept)


def _at(data: Any, path: KeyPath) -> Any:
    for part in path:
        if isinstance(data, list) and isinstance(part, int):
            data = data[part]
        else:
            data = data.get(str(part)) if isinstance(data, dict) else None
    return data
