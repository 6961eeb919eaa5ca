"""The spec format as JSON Schema (draft 2020-12), for editors and other tools.

One schema covers both kinds of spec file, chosen by whether the file writes ``extends``:

- without it, the file is a whole model, validated as :class:`~archspec.spec.ModelSpec` is;
- with it, the file is a *child*: changes merged onto its base by the rules of
  :mod:`archspec.compose`. Every key is optional, ``null`` deletes a key, a list may be written as
  a mapping of item indices (``stages: {2: {depth: 8}}``) whose items are changes too, and a
  component mapping either names its ``type`` (and then holds that type's fields) or leaves the
  base's type in place (and then holds the fields of some component of its kind, since the schema
  cannot see which type the base has).

The child half is derived from the whole-spec half definition by definition, so every field and
every registered component, plugins included, is covered without being named here.
"""

from __future__ import annotations

import json
from typing import Any

from archspec import registry
from archspec.spec import ModelSpec

SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"

PARTIAL_PREFIX = "Partial"
"""A definition ``X`` of the whole spec has its child counterpart at ``#/$defs/PartialX``."""

EXTENDS = {
    "type": "string",
    "description": "a base spec to merge this one onto: a relative .yaml path or a shipped spec name",
}

_NULL = {"type": "null"}
_ANNOTATIONS = ("title", "description", "default", "examples", "deprecated")
_DEFS = "#/$defs/"
_INDEX_KEYS = {"type": "object", "minProperties": 1, "propertyNames": {"pattern": "^[0-9]+$"}}
"""A mapping written where the base has a list, which changes the items it numbers (``{2: {depth: 8}}``);
its keys must then be plain decimals (``2``, not ``02``)."""
_COMBINING = {"$ref", "const", "anyOf", "oneOf", "allOf", "not", "if"}
"""Keywords that apply whatever the type of the value; a schema holding one cannot take ``null`` by its ``type``."""


def json_schema() -> dict[str, Any]:
    """The schema of a spec file: a complete spec, or with ``extends`` a child of its base.

    Built-in and plugin components are included.
    """
    model = ModelSpec.model_json_schema()
    defs: dict[str, Any] = model.pop("$defs", {})
    _tag_required(defs)
    _tag_required(model)
    _claim(defs, "ModelSpec", model)
    partial = _Partial(defs)
    child_ref = partial.ref("ModelSpec")
    child = partial.made[PARTIAL_PREFIX + "ModelSpec"]
    child["description"] = f"Changes to the spec named by `extends`.\n\n{model.get('description', '')}".rstrip()
    child["properties"]["extends"] = dict(EXTENDS)
    child["required"] = ["extends"]
    model["properties"]["extends"] = dict(EXTENDS)  # never present here, but offered where a file starts
    for name, definition in partial.made.items():
        _claim(defs, name, definition)
    # An ``each`` entry edits the stage's components as a child spec edits its base's.
    defs["StageEdit"] = {"$ref": f"{_DEFS}{PARTIAL_PREFIX}StageEdit"}
    return {
        "$schema": SCHEMA_URI,
        "$id": "archspec.schema.json",
        "title": "archspec model spec",
        "description": "A whole model spec, or (with `extends`) changes merged onto a base spec.",
        "type": "object",
        "if": {"required": ["extends"]},
        "then": child_ref,
        "else": {"$ref": f"{_DEFS}ModelSpec"},
        "$defs": dict(sorted(defs.items())),
    }


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2) + "\n"


def _claim(defs: dict[str, Any], name: str, definition: Any) -> None:
    if name in defs:
        raise ValueError(f"two JSON Schema definitions are named {name!r}; rename one of the spec classes")
    defs[name] = definition


def _tag_required(node: Any) -> None:
    """A component mapping in a complete spec must name its ``type``, as the loader demands."""
    if isinstance(node, dict):
        if "discriminator" in node:
            node["required"] = [node["discriminator"]["propertyName"]]
        for value in node.values():
            _tag_required(value)
    elif isinstance(node, list):
        for value in node:
            _tag_required(value)


def _split(node: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A schema's annotations (title, default, ...) and the rest, which does the validating."""
    notes = {key: value for key, value in node.items() if key in _ANNOTATIONS}
    return notes, {key: value for key, value in node.items() if key not in _ANNOTATIONS}


def _one_of_these(members: list[Any], notes: dict[str, Any]) -> dict[str, Any]:
    """``anyOf`` the members, with nested bare ``anyOf`` lists flattened and duplicates dropped."""
    flat: list[Any] = []
    for member in members:
        inner = member["anyOf"] if isinstance(member, dict) and list(member) == ["anyOf"] else [member]
        flat += [item for item in inner if item not in flat]
    return {**notes, "anyOf": flat} if len(flat) > 1 else {**notes, **flat[0]}


class _Partial:
    """Derives the child form of schemas of the whole spec; ``made`` holds the definitions it wrote."""

    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs
        self.made: dict[str, Any] = {}
        self.kinds = {frozenset(registry.names(kind)): kind for kind in registry.KINDS}
        self.unions: dict[str, dict[str, str]] = {}

    def ref(self, name: str) -> dict[str, Any]:
        target = PARTIAL_PREFIX + name
        if target not in self.made:
            self.made[target] = {}  # claimed first, so a definition that refers to itself ends here
            self.made[target] = self.schema(self.defs[name])
        return {"$ref": _DEFS + target}

    def schema(self, node: Any) -> Any:
        """The child form of one schema: what a child spec may write where a complete one writes ``node``."""
        if not isinstance(node, dict):
            return node
        notes, core = _split(node)
        if "$ref" in core:
            rest = {key: value for key, value in core.items() if key != "$ref"}
            return {**notes, **self.ref(core["$ref"].removeprefix(_DEFS)), **rest}
        if "discriminator" in core:
            return {**notes, **self.component(core)}
        if "properties" in core:
            return self.mapping(node)
        if core.get("type") == "array":
            # The loader's rule: a mapping whose keys are all item numbers changes those items; any
            # other value replaces the base's list whole, so a list written out holds complete items.
            return {**notes, "if": _INDEX_KEYS, "then": self.by_index(core), "else": core}
        for key in ("anyOf", "oneOf"):
            if key in core:
                # Partial members can overlap where complete ones did not: anyOf, never oneOf.
                rest = {k: v for k, v in core.items() if k != key}
                return _one_of_these([self.schema(member) for member in core[key]], {**notes, **rest})
        if isinstance(core.get("additionalProperties"), dict):  # a mapping of named entries (a flow's parts)
            return {**notes, **core, "additionalProperties": self.schema(core["additionalProperties"])}
        if "allOf" in core:
            return {**notes, **core, "allOf": [self.schema(member) for member in core["allOf"]]}
        return node

    def mapping(self, node: dict[str, Any]) -> dict[str, Any]:
        """Every key optional, and each may be ``null`` (except a component's ``type`` tag)."""
        properties = {
            key: value if "const" in value else self.deletable(self.schema(value))
            for key, value in node["properties"].items()
        }
        return {**{k: v for k, v in node.items() if k != "required"}, "properties": properties}

    @staticmethod
    def deletable(node: dict[str, Any]) -> dict[str, Any]:
        """``node`` or ``null``; a plain typed schema takes ``null`` among its types, for plainer messages."""
        notes, core = _split(node)
        if core.get("if") == _INDEX_KEYS:
            return {**notes, **core, "else": _Partial.deletable(core["else"])}
        members = core["anyOf"] if list(core) == ["anyOf"] else [core]
        others = [member for member in members if member != _NULL]
        only = others[0] if len(others) == 1 else {}
        if isinstance(only.get("type"), str) and not _COMBINING.intersection(only):
            plain = {**only, "type": [only["type"], "null"]}
            if "enum" in plain:
                plain["enum"] = [*plain["enum"], None]
            return {**notes, **plain}
        return _one_of_these([*others, _NULL], notes)

    def by_index(self, array: dict[str, Any]) -> dict[str, Any]:
        """A list written as ``{index: change}``: each item named is changed, the rest kept."""
        indexed: dict[str, Any] = {"type": "object", "additionalProperties": False}
        if "prefixItems" in array:
            indexed["properties"] = {str(i): self.schema(item) for i, item in enumerate(array["prefixItems"])}
        else:
            indexed["patternProperties"] = {"^(0|[1-9][0-9]*)$": self.schema(array.get("items", {}))}
        return indexed

    def component(self, union: dict[str, Any]) -> dict[str, Any]:
        """A component slot, kept once per kind among the definitions (``PartialNormComponent``)."""
        mapping: dict[str, str] = union["discriminator"]["mapping"]
        kind = self.kinds.get(frozenset(mapping))
        target = f"{PARTIAL_PREFIX}{kind.capitalize()}Component" if kind else ""
        if not target or self.unions.setdefault(target, mapping) != mapping:
            return self.any_component(union)  # a union no kind names: written out where it is used
        if target not in self.made:
            self.made[target] = {}  # claimed first, as in ref()
            self.made[target] = self.any_component(union)
        return {"$ref": _DEFS + target}

    def any_component(self, union: dict[str, Any]) -> dict[str, Any]:
        """A named ``type`` picks that type's fields; without one, the fields of any type will do."""
        tag = union["discriminator"]["propertyName"]
        mapping: dict[str, str] = union["discriminator"]["mapping"]
        members = {name: self.ref(ref.removeprefix(_DEFS)) for name, ref in mapping.items()}
        return {
            "type": "object",
            "properties": {tag: {"enum": sorted(members)}},
            "if": {"required": [tag]},
            "then": {
                "allOf": [
                    {"if": {"properties": {tag: {"const": name}}}, "then": member} for name, member in members.items()
                ]
            },
            "else": {"anyOf": list(members.values())},
        }
