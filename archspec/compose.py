"""Spec composition: ``extends:`` bases and ``--set`` overrides, with every value's origin kept.

Merge rules (base ← child):

- mappings merge key by key, recursively, except that a mapping naming a different component
  ``type`` than the base's replaces it whole (the base type's fields rarely fit the new one);
- a list is replaced whole, unless the child writes a mapping with integer keys, which overrides
  those items only (``stages: {2: {depth: 8}}``);
- ``null`` deletes the key, so the default applies again.

``extends`` names a ``.yaml`` file relative to the folder of the spec that writes it (``..``
included, as in MMEngine's ``_base_``), or a shipped spec by name (``extends: spectformer-h-s``). A
base must be a regular ``.yaml`` file whose top-level keys are spec keys; a file that is not a spec is
refused without echoing any of its values. A spec and all its bases share one size budget
(:class:`~archspec.loader.ReadBudget`). Overrides are applied last, in order; setting a component's
``type`` to a different value starts that component from its defaults, keeping what other ``--set``
arguments wrote into it, since the old type's fields rarely fit the new one.

Merging is linear in the size of the documents: positions are moved by walking the values they
belong to, never by scanning every recorded position.

An override is bounded like YAML input before any work is done on it: its key path may have at most
:data:`~archspec.loader.MAX_DEPTH` levels (together with the nesting of its value) and
:data:`MAX_KEY_CHARS` characters, its value at most :data:`~archspec.loader.MAX_BYTES` bytes, and
one spec takes at most :data:`MAX_OVERRIDES` of them. Applying one walks its path once.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from archspec.errors import ArchspecError, KeyPath, PathPart, Position, SpecFileError, format_path
from archspec.loader import MAX_BYTES, MAX_DEPTH, ReadBudget, parse_yaml, read_spec_file
from archspec.output import MAX_LINE


def _shipped_root() -> Path:
    """The folder of shipped specs: package data (``archspec/specs``), found through importlib.resources."""
    root = resources.files("archspec") / "specs"
    # archspec is installed as plain files (a wheel, an editable install or a checkout), never zipped,
    # so the resource is a real folder; specs are read by path (os.open), as any user's spec file is.
    return Path(str(root))


SHIPPED_SPECS = _shipped_root()
"""The specs that come with archspec: package data in ``archspec/specs`` (``specs`` at the repository
root links to it), present in a wheel, an editable install and a source checkout alike."""

SHIPPED_FOLDERS = ("", "zoo", "variants", "digits")
"""Where shipped specs lie under :data:`SHIPPED_SPECS`: the SpectFormers, the zoo of reference models, the
variants, and SpectFormer scaled to 8×8 digits. No two shipped specs share a name (a file stem)."""


def shipped_specs() -> list[Path]:
    """Every shipped spec file, the top-level ones first."""
    return [path for folder in SHIPPED_FOLDERS for path in sorted((SHIPPED_SPECS / folder).glob("*.yaml"))]


def shipped_path(name_or_path: str | Path) -> Path:
    """``name_or_path`` as a path, or the shipped spec of that name (``resnet50``) when no such file exists."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or _exists(path):
        return path
    return next((shipped for shipped in shipped_specs() if shipped.stem == str(name_or_path)), path)


def closest_shipped(name: str, count: int = 3) -> list[str]:
    """Up to ``count`` shipped spec names closest to ``name`` (its stem, if it is a path), best first."""
    stem = Path(name).stem if name.endswith((".yaml", ".yml")) else Path(name).name
    return difflib.get_close_matches(stem, sorted({p.stem for p in shipped_specs()}), n=count, cutoff=0.6)


def _is_name(path: Path) -> bool:
    """Whether ``path`` reads as a shipped spec's name: one part, no ``.yaml``/``.yml`` suffix."""
    text = str(path)
    return "/" not in text and "\\" not in text and path.suffix not in (".yaml", ".yml")


def _no_such_name(name: str) -> str:
    """The message for a spec named ``name`` that is neither a file nor a shipped spec."""
    close = closest_shipped(name)
    return "no such file or shipped spec" + (f"; did you mean {', '.join(close)}?" if close else "")


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; a name the system cannot even look up (too long, say) does not."""
    try:
        return path.exists()
    except OSError:
        return False


MAX_EXTENDS_DEPTH = 16

MAX_KEY_CHARS = 1_024
"""Upper bound on the characters of an override's key path (a real one has a few dozen)."""

MAX_OVERRIDES = 1_000
"""Upper bound on the overrides applied to one spec (``--set`` and a sweep's ``--grid`` settings together)."""

SHOWN_CHARS = 80
"""Characters of an override's text quoted in a message about it; the rest is counted, not echoed."""


class OverrideError(ArchspecError):
    """A ``--set`` argument is malformed."""

    code = "AS601"


def shown_option(option: str, text: str, limit: int = SHOWN_CHARS) -> str:
    """``--set TEXT`` as a message quotes it: cut to ``limit`` characters, the rest counted."""
    whole = f"{option} {text}"
    return whole if len(whole) <= limit else f"{whole[:limit]}… ({len(whole) - limit:,} more characters)"


def check_setting(option: str, text: str, key: str, raw: str) -> None:
    """Refuse a ``KEY.PATH=VALUE`` setting (``text``, split into ``key`` and ``raw``) whose key path is
    deeper or longer, or whose value is larger, than a spec file could hold, before any of it is parsed.

    Levels are counted by their separators, so the check takes one pass over the text and builds nothing.
    """
    levels = key.count(".") + key.count("[") + 1
    if levels > MAX_DEPTH:
        raise OverrideError(
            f"{shown_option(option, text)}: the key path has {levels:,} levels; a spec nests at most {MAX_DEPTH}"
        )
    if len(key) > MAX_KEY_CHARS:
        raise OverrideError(
            f"{shown_option(option, text)}: the key path has {len(key):,} characters; "
            f"a key path has at most {MAX_KEY_CHARS:,}"
        )
    size = len(raw) if raw.isascii() else len(raw.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        what = "the values have" if option == "--grid" else "the value has"
        raise OverrideError(
            f"{shown_option(option, text)}: {what} {size:,} bytes; a spec file holds at most {MAX_BYTES:,}"
        )


def _nesting(value: Any) -> int:
    """How many levels ``value`` adds below the key it is written at (0 for a scalar or an empty container)."""
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return max((1 + _nesting(item) for item in items), default=0)


@dataclass(frozen=True)
class Override:
    """One ``--set key.path=value``: the parsed path and YAML-typed value, and the text as written."""

    path: KeyPath
    value: Any
    text: str

    @cached_property
    def position(self) -> Position:
        return Position(shown_option("--set", self.text, MAX_LINE), 0, 0)

    @cached_property
    def shown(self) -> str:
        """``--set TEXT`` as a message about it quotes it."""
        return shown_option("--set", self.text)


def parse_override(text: str) -> Override:
    """Parse ``stages.2.depth=8`` (or ``stages[2].depth=8``); the value is read as YAML.

    The text is checked against the limits of a spec file (see :func:`check_setting`) before it is parsed.
    """
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise OverrideError(f"{shown_option('--set', text)}: expected KEY.PATH=VALUE, e.g. --set stages.2.depth=8")
    check_setting("--set", text, key, raw)
    if re.search(r"\.\.|^\.|\.$|\[\]", key.strip()):
        raise OverrideError(
            f"{shown_option('--set', text)}: {key!r} has an empty key (two dots in a row, or a dot at an end)"
        )
    parts = [p for p in re.split(r"\.|\[|\]", key.strip()) if p != ""]
    if not parts or any(not re.fullmatch(r"[A-Za-z0-9_$-]+", p) for p in parts):
        raise OverrideError(f"{shown_option('--set', text)}: {key!r} is not a key path like stages.2.depth")
    path = tuple(int(p) if p.isdigit() else p for p in parts)
    value = parse_yaml(raw, shown_option("--set", text, MAX_LINE))[0] if raw.strip() else None
    if len(path) + (extra := _nesting(value)) > MAX_DEPTH:
        raise OverrideError(
            f"{shown_option('--set', text)}: the key path has {len(path)} levels and its value nests {extra} more; "
            f"a spec nests at most {MAX_DEPTH}"
        )
    return Override(path, value, text)


def _check_count(overrides: Sequence[Override]) -> None:
    if len(overrides) > MAX_OVERRIDES:
        raise OverrideError(
            f"--set: {len(overrides):,} overrides; a spec takes at most {MAX_OVERRIDES:,} "
            "(--set and --grid settings together)"
        )


def _apply_all(data: Any, positions: dict[KeyPath, Position], overrides: Sequence[Override]) -> None:
    """Apply ``overrides`` in order."""
    retyped: dict[int, dict[str, Any]] = {}  # components a --set gave a new type, by id (held, so no id is reused)
    for override in overrides:
        if not isinstance(data, dict):
            break
        _apply(data, positions, override, retyped)


@dataclass(frozen=True)
class Document:
    """A spec file read once, with its bases merged in; :meth:`with_overrides` gives copies to change."""

    data: Any
    positions: dict[KeyPath, Position]

    def with_overrides(self, overrides: Sequence[Override]) -> tuple[Any, dict[KeyPath, Position]]:
        """A copy of the data and positions with ``overrides`` applied; this document stays as read."""
        _check_count(overrides)
        data, positions = copy.deepcopy(self.data), dict(self.positions)
        _apply_all(data, positions, overrides)
        return data, positions


def read_document(path: str | Path, keys: Collection[str] | None = None) -> Document:
    """Read a spec with its bases merged in, to apply many sets of overrides to (a sweep's variants)."""
    return Document(*_load(Path(path), (), ReadBudget(), keys))


def load_document(
    path: str | Path, overrides: Sequence[Override] = (), keys: Collection[str] | None = None
) -> tuple[Any, dict[KeyPath, Position]]:
    """Read a spec with its bases merged in and overrides applied; returns data and key positions.

    ``keys`` are the top-level keys a spec may have; a base with any other is not a spec and is
    refused (None accepts any base that holds a mapping).
    """
    _check_count(overrides)
    data, positions = _load(Path(path), (), ReadBudget(), keys)
    _apply_all(data, positions, overrides)
    return data, positions


def _load(
    path: Path, chain: tuple[Path, ...], budget: ReadBudget, keys: Collection[str] | None
) -> tuple[Any, dict[KeyPath, Position]]:
    try:
        data, source = read_spec_file(path, budget)
    except SpecFileError as exc:
        if not chain and _is_name(path) and str(exc) == f"{path}: no such file":
            raise SpecFileError(str(path), _no_such_name(str(path))) from None
        raise
    positions = dict(source.positions)
    if not isinstance(data, dict) or "extends" not in data:
        return data, positions
    where = positions[("extends",)]
    reference = data.pop("extends")
    del positions[("extends",)]
    if not isinstance(reference, str):
        raise SpecFileError(where, "extends: expected a file name or a shipped spec name", "AS104")
    base = _find_base(reference, path, where)
    resolved = (*chain, path.resolve())
    if base.resolve() in resolved:
        cycle = " → ".join(p.name for p in (*resolved, base.resolve()))
        raise SpecFileError(where, f"extends: cycle {cycle}", "AS104")
    if len(resolved) > MAX_EXTENDS_DEPTH:
        raise SpecFileError(where, f"extends: more than {MAX_EXTENDS_DEPTH} levels of bases", "AS104")
    base_data, base_positions = _load(base, resolved, budget, keys)
    stray = [] if keys is None or not isinstance(base_data, dict) else [k for k in base_data if k not in keys]
    if not isinstance(base_data, dict) or stray:
        # Say so without quoting anything the file holds: it may not be meant for archspec at all.
        raise SpecFileError(
            where, f"extends: {reference} is not an archspec spec (not a mapping of spec keys)", "AS104"
        )
    _merge(base_data, base_positions, data, positions, (), ())
    base_positions[()] = positions[()]
    return base_data, base_positions


def _find_base(reference: str, spec: Path, where: Position) -> Path:
    candidates = [spec.parent / reference]
    if "/" not in reference and "\\" not in reference:
        name = reference if reference.endswith((".yaml", ".yml")) else f"{reference}.yaml"
        candidates += [SHIPPED_SPECS / folder / name for folder in SHIPPED_FOLDERS]
    for candidate in candidates:
        if _exists(candidate):
            if candidate.suffix not in (".yaml", ".yml") or candidate.resolve().suffix not in (".yaml", ".yml"):
                raise SpecFileError(where, f"extends: {reference} is not a .yaml file", "AS104")
            if not candidate.is_file():
                raise SpecFileError(where, f"extends: {reference} is not a regular file", "AS104")
            return candidate
    close = closest_shipped(reference)
    hint = f"; did you mean {', '.join(close)}?" if close else "; archspec list shows the shipped specs"
    raise SpecFileError(where, f"extends: no such file or shipped spec {reference!r}{hint}", "AS104")


def _paths(value: Any) -> Iterator[KeyPath]:
    """The key paths inside ``value``, relative to it, itself (``()``) first."""
    yield ()
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        for path in _paths(item):
            yield (key, *path)


def _drop(positions: dict[KeyPath, Position], prefix: KeyPath, value: Any) -> None:
    """Forget the positions of ``value``, which lies at ``prefix``."""
    for path in _paths(value):
        positions.pop(prefix + path, None)


def _adopt(
    positions: dict[KeyPath, Position], source: dict[KeyPath, Position], source_prefix: KeyPath, target: KeyPath,
    value: Any, old: Any,
) -> None:  # fmt: skip
    """``value`` (at ``source_prefix`` in ``source``) replaces ``old`` at ``target``: move its positions along."""
    _drop(positions, target, old)
    for path in _paths(value):
        if (position := source.get(source_prefix + path)) is not None:
            positions[target + path] = position


def _retyped(base: dict[str, Any], child: dict[str, Any]) -> bool:
    """A child mapping that names another component ``type`` replaces the base's: the old type's fields rarely fit."""
    return "type" in child and "type" in base and child["type"] != base["type"]


def _index(text: str, where: Position, here: KeyPath, length: int) -> int:
    """The list index a child's index-map key names: a plain decimal below ``length``."""
    if not (text.isdecimal() and text.isascii()) or (text != "0" and text.startswith("0")):
        raise SpecFileError(where, f"{format_path(here)}: {text!r} is not a list index (write 0, 1, 2 …)", "AS104")
    index = int(text)
    if index >= length:
        raise SpecFileError(
            where, f"{format_path(here)}: index {index} is out of range (the base has {length} items)", "AS104"
        )
    return index


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
            _drop(base_positions, here, current)
        elif isinstance(value, dict) and isinstance(current, dict) and not _retyped(current, value):
            base_positions[here] = child_positions[there]
            _merge(current, base_positions, value, child_positions, there, here)
        elif isinstance(value, dict) and isinstance(current, list) and value and all(k.isdigit() for k in value):
            for index_text, item in value.items():
                item_there = (*there, index_text)
                index = _index(index_text, child_positions[item_there], here, len(current))
                if isinstance(item, dict) and isinstance(current[index], dict) and not _retyped(current[index], item):
                    _merge(current[index], base_positions, item, child_positions, item_there, (*here, index))
                else:
                    _adopt(base_positions, child_positions, item_there, (*here, index), item, current[index])
                    current[index] = item
        else:
            _adopt(base_positions, child_positions, there, here, value, current)
            base[key] = value


def _apply(
    data: dict[str, Any], positions: dict[KeyPath, Position], override: Override, retyped: dict[int, dict[str, Any]]
) -> None:
    """Apply one override, walking its key path once; ``retyped`` is passed on to :func:`_retype`."""
    node: Any = data
    path: list[PathPart] = []  # the path as the data spells it: list indices as ints, mapping keys as strings
    for part in override.path[:-1]:
        if isinstance(node, dict):
            key = str(part)
            if key not in node:  # a mapping this --set creates: its problems are the --set's
                positions[(*path, key)] = override.position
                node[key] = {}
            node = node[key]
            path.append(key)
        elif isinstance(node, list) and isinstance(part, int):
            if part >= len(node):
                written = override.path[: len(path)]
                raise OverrideError(
                    f"{override.shown}: {format_path((*written, part))}: index {part} is out of "
                    f"range ({format_path(written)} has {len(node)} items)"
                )
            node = node[part]
            path.append(part)
        else:
            raise OverrideError(f"{override.shown}: {format_path(override.path[: len(path)])} holds no keys to set")
    last = override.path[-1]
    if isinstance(node, list):
        if not isinstance(last, int) or last >= len(node):
            raise OverrideError(f"{override.shown}: {format_path(override.path)} is not an item of the list")
        target: KeyPath = (*path, last)
        old = node[last]
        node[last] = _fresh(override.value)
    elif isinstance(node, dict):
        key = str(last)
        target = (*path, key)
        old = node.get(key)
        if override.value is None:
            node.pop(key, None)
        elif key == "type" and node.get("type") not in (None, override.value):
            _retype(node, positions, tuple(path), override, retyped)
        else:
            node[key] = _fresh(override.value)
    else:
        raise OverrideError(f"{override.shown}: {format_path(override.path[:-1])} holds no keys to set")
    _drop(positions, target, old)
    positions[target] = override.position


def _fresh(value: Any) -> Any:
    """A value to place in the data: a mapping or list is copied, since a parsed override may be
    applied to many documents (a sweep parses each of its settings once)."""
    return copy.deepcopy(value) if isinstance(value, dict | list) else value


def _retype(
    node: dict[str, Any],
    positions: dict[KeyPath, Position],
    prefix: KeyPath,
    override: Override,
    retyped: dict[int, dict[str, Any]],
) -> None:
    """Give the component at ``prefix`` a new ``type``: it starts from the new type's defaults, keeping
    only what earlier ``--set`` arguments wrote into it (the spec's fields were for the old type), so
    the order of ``--set`` arguments does not matter.

    Only the values removed are walked. A component already in ``retyped`` holds nothing but what
    ``--set`` arguments wrote into it, so its keys are not looked at again: a run of type changes to
    one component stays linear in their number.
    """
    if id(node) not in retyped:
        no_position = Position("", 0, 0)
        from_spec = [
            key
            for key in node
            if key != "type" and not positions.get((*prefix, key), no_position).file.startswith("--set ")
        ]
        for key in from_spec:
            _drop(positions, (*prefix, key), node.pop(key))
        retyped[id(node)] = node
    node["type"] = override.value
    positions[prefix] = override.position  # the component is now the --set's: its problems point there
