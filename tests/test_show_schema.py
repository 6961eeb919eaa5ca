"""show (canonical YAML), the JSON Schema, and fingerprints."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from conftest import DATA, ROOT, SHIPPED
from jsonschema.exceptions import best_match

import archspec
from archspec import registry
from archspec.errors import SpecError, format_path
from archspec.fingerprint import canonical, canonical_yaml, differences, spec_fingerprint
from archspec.loader import read_spec_file
from archspec.schema import PARTIAL_PREFIX, json_schema, schema_text

SCHEMA_FILE = ROOT / "specs" / "archspec.schema.json"
README = (ROOT / "README.md").read_text()


def _is_spec(text: str) -> bool:
    """A YAML document written as a whole spec or as a child of one (not a fragment such as ``head: ...``)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    return isinstance(data, dict) and ("name" in data or "extends" in data)


def _readme_specs() -> list[Any]:
    blocks = [
        (README[: m.start()].count("\n") + 2, m.group(1)) for m in re.finditer(r"```yaml\n(.*?)```", README, re.S)
    ]
    # A block headed "# bad....yaml" is an error example: it is there to fail (tests/test_examples.py runs it).
    return [
        pytest.param(None, text, id=f"README.md:{line}")
        for line, text in blocks
        if _is_spec(text) and not text.startswith("# bad")
    ]


def _data_specs() -> list[Any]:
    paths = sorted(p for p in DATA.rglob("*") if p.suffix in (".yaml", ".yml"))
    return [pytest.param(p, p.read_text(), id=f"data/{p.relative_to(DATA)}") for p in paths if _is_spec(p.read_text())]


def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))


def _branch(name: str) -> jsonschema.Draft202012Validator:
    """A validator for one definition of the committed schema: ``ModelSpec`` or its child form."""
    schema = json.loads(SCHEMA_FILE.read_text())
    return jsonschema.Draft202012Validator({"$ref": f"#/$defs/{name}", "$defs": schema["$defs"]})


def _check_file(path: Path) -> None:
    """The file as written follows the schema (as a child where it extends a base), and loads."""
    data, _ = read_spec_file(path)
    assert list(_validator().iter_errors(data)) == []
    branch = PARTIAL_PREFIX + "ModelSpec" if "extends" in data else "ModelSpec"
    assert list(_branch(branch).iter_errors(data)) == []
    resolved = canonical(archspec.load_spec(path).spec)
    assert list(_validator().iter_errors(resolved)) == []


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_show_round_trips(path):
    spec = archspec.load_spec(path).spec
    text = canonical_yaml(spec)
    again = archspec.validate(yaml.safe_load(text))
    assert canonical_yaml(again) == text
    assert spec_fingerprint(again) == spec_fingerprint(spec)


def test_same_model_spelled_differently_has_the_same_fingerprint(tmp_path):
    plain = archspec.load_spec(ROOT / "specs" / "spectformer-h-s.yaml")
    child = tmp_path / "same.yaml"
    child.write_text("extends: spectformer-h-s\ninput: {size: [224, 224], channels: 3}\nhead: {heads: 14}\n")
    assert spec_fingerprint(archspec.load_spec(child).spec) == spec_fingerprint(plain.spec)
    deeper = archspec.load_spec(child, ["stages.2.depth=8"]).spec
    assert spec_fingerprint(deeper) != spec_fingerprint(plain.spec)
    assert differences(plain.spec.model_dump(mode="json"), deeper.model_dump(mode="json")) == ["stages[2].depth: 6 → 8"]


def test_committed_schema_is_current():
    assert SCHEMA_FILE.read_text() == schema_text()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_specs_follow_the_schema(path):
    schema = os.path.relpath(SCHEMA_FILE, path.parent)
    assert path.read_text().startswith(f"# yaml-language-server: $schema={schema}\n")
    _check_file(path)


@pytest.mark.parametrize(("path", "text"), [*_readme_specs(), *_data_specs()])
def test_documented_and_test_specs_follow_the_schema(path, text, tmp_path):
    if path is None:  # a README example: a child extends a shipped spec, found from anywhere
        path = tmp_path / "example.yaml"
        path.write_text(text)
    _check_file(path)


def test_readme_shows_a_child_and_a_whole_spec():
    kinds = {"extends" in yaml.safe_load(param.values[1]) for param in _readme_specs()}
    assert kinds == {False, True}


def test_extends_picks_the_child_schema():
    child = {"extends": "spectformer-h-s", "stages": {"2": {"depth": 8}}, "head": {"aux_head": None}}
    assert list(_validator().iter_errors(child)) == []
    assert [e.message for e in _branch("ModelSpec").iter_errors(child)] == [
        "{'2': {'depth': 8}} is not of type 'array'",
        "{'aux_head': None} is not valid under any of the given schemas",
        "'name' is a required property",
    ]
    assert [e.message for e in _validator().iter_errors({"extends": None})] == ["None is not of type 'string'"]


def _head_names() -> str:
    return ", ".join(registry.names("head"))


CHILD_MISTAKES = [
    pytest.param(
        "stages: {2: {dpth: 8}}",
        ("stages[2].dpth", "unknown key 'dpth'; did you mean 'depth'?"),
        (("stages", "2"), "Additional properties are not allowed ('dpth' was unexpected)"),
        id="unknown-key",
    ),
    pytest.param(
        "stages: {1: {mixer: {type: attention, hedas: 4}}}",
        ("stages[1].mixer.hedas", "unknown key 'hedas' for mixer 'attention'; did you mean 'heads'?"),
        (("stages", "1", "mixer"), "Additional properties are not allowed ('hedas' was unexpected)"),
        id="unknown-key-of-a-component",
    ),
    pytest.param(  # without a type the base's stays, which the schema cannot see: any head's fields will do
        "head: {hedas: 16}",
        ("head.hedas", "unknown key 'hedas' for head 'class_attention'; did you mean 'heads'?"),
        (("head",), "{'hedas': 16} is not valid under any of the given schemas"),
        id="unknown-key-of-an-untyped-component",
    ),
    pytest.param(
        "head: {type: clas_attention}",
        ("head.type", f"unknown head type 'clas_attention'; did you mean 'class_attention'? (valid: {_head_names()})"),
        (("head", "type"), f"'clas_attention' is not one of {registry.names('head')!r}"),
        id="unknown-type",
    ),
    pytest.param(
        "stages: {2: {depth: eight}}",
        ("stages[2].depth", "input should be a valid integer (got 'eight')"),
        (("stages", "2", "depth"), "'eight' is not of type 'integer', 'null'"),
        id="wrong-value-type",
    ),
    pytest.param(  # not an index map, so it replaces the base's list
        "stages: {two: {depth: 8}}",
        ("stages", "input should be a valid tuple"),
        (("stages",), "{'two': {'depth': 8}} is not of type 'array', 'null'"),
        id="index-not-a-number",
    ),
]


@pytest.mark.parametrize(("change", "loader", "schema"), CHILD_MISTAKES)
def test_child_schema_rejects_what_the_loader_rejects(change, loader, schema, tmp_path):
    path = tmp_path / "child.yaml"
    path.write_text(f"extends: spectformer-h-s\n{change}\n")
    data, _ = read_spec_file(path)
    errors = list(_validator().iter_errors(data))
    assert len(errors) == 1
    best = best_match(errors)
    assert (tuple(best.absolute_path), best.message) == schema
    with pytest.raises(SpecError) as caught:
        archspec.load_spec(path)
    assert [(format_path(p.path), p.message) for p in caught.value.problems] == [loader]


def test_child_schema_covers_every_component():
    """Every registered component has a child form, so a plugin is covered as soon as it registers."""
    defs = json_schema()["$defs"]
    for cls in registry.components():
        properties = defs[PARTIAL_PREFIX + cls.__name__]["properties"]
        assert set(properties) == set(cls.model_fields)
        assert "required" not in defs[PARTIAL_PREFIX + cls.__name__]


def test_schema_rejects_what_the_spec_rejects():
    jsonschema.Draft202012Validator.check_schema(json_schema())
    validator = jsonschema.Draft202012Validator(json_schema())
    bad = {"name": "x", "stages": [{"dim": 8, "depth": 1, "mixer": {"type": "spectal"}}]}
    assert len(list(validator.iter_errors(bad))) == 1
    extra = {"name": "x", "stages": [{"dim": 8, "depth": 1, "mixer": {"type": "spectral"}, "fnn": {}}]}
    assert [e.message for e in validator.iter_errors(extra)] == [
        "Additional properties are not allowed ('fnn' was unexpected)"
    ]
    untyped = {"name": "x", "stages": [{"dim": 8, "depth": 1, "mixer": {"heads": 2}}]}
    with pytest.raises(SpecError, match="missing 'type'"):
        archspec.validate(untyped)
    assert [e.message for e in validator.iter_errors(untyped)] == [
        "{'heads': 2} is not valid under any of the given schemas"
    ]
