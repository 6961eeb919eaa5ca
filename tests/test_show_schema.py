"""show (canonical YAML), the JSON Schema, and fingerprints."""

from __future__ import annotations

import json
import os

import jsonschema
import pytest
import yaml
from conftest import ROOT, SHIPPED

import archspec
from archspec.fingerprint import canonical, canonical_yaml, differences, spec_fingerprint
from archspec.schema import json_schema, schema_text

SCHEMA_FILE = ROOT / "specs" / "archspec.schema.json"


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
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    data = yaml.safe_load(path.read_text())
    if "extends" in data:  # the schema describes whole specs: check the one this file resolves to
        data = canonical(archspec.load_spec(path).spec)
    assert list(validator.iter_errors(data)) == []


def test_schema_rejects_what_the_spec_rejects():
    jsonschema.Draft202012Validator.check_schema(json_schema())
    validator = jsonschema.Draft202012Validator(json_schema())
    bad = {"name": "x", "stages": [{"dim": 8, "depth": 1, "mixer": {"type": "spectal"}}]}
    assert len(list(validator.iter_errors(bad))) == 1
    extra = {"name": "x", "stages": [{"dim": 8, "depth": 1, "mixer": {"type": "spectral"}, "fnn": {}}]}
    assert [e.message for e in validator.iter_errors(extra)] == [
        "Additional properties are not allowed ('fnn' was unexpected)"
    ]
