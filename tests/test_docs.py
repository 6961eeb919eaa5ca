"""The README documents every command, option and spec field, so adding one without docs fails here."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from conftest import ROOT
from pydantic import BaseModel

from archspec import registry
from archspec.cli import _parser
from archspec.errors import CATALOGUE
from archspec.spec import InputSpec, ModelSpec, StageSpec
from archspec.specbase import StrictModel

README = (ROOT / "README.md").read_text()


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = _parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _models(model: type[BaseModel]) -> list[type[BaseModel]]:
    """A spec class and the nested spec classes its fields hold (e.g. the conv stem's layers)."""
    found = [model]
    for field in model.model_fields.values():
        for candidate in re.findall(r"[A-Za-z_]+", str(field.annotation)):
            nested = _nested_classes().get(candidate)
            if nested is not None and nested not in found and nested is not model:
                found += _models(nested)
    return found


def _nested_classes() -> dict[str, type[StrictModel]]:
    classes: dict[str, type[StrictModel]] = {}
    pending: list[type] = [StrictModel]
    while pending:
        cls = pending.pop()
        classes[cls.__name__] = cls
        pending += cls.__subclasses__()
    return classes


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_every_command_and_option_is_documented(command):
    assert f"archspec {command}" in README
    for action in _subcommands()[command]._actions:
        for option in action.option_strings:
            if option not in ("-h", "--help"):
                assert f"{option}" in README, f"{command} {option}"


SPEC_CLASSES = [ModelSpec, StageSpec, InputSpec, *registry.components()]


@pytest.mark.parametrize("model", SPEC_CLASSES, ids=lambda m: m.__name__)
def test_every_spec_field_is_documented(model):
    if model in registry.components():
        assert f"type: {model.type_name()}" in README
    for cls in _models(model):
        for name in cls.model_fields:
            assert re.search(rf"\b{name}:", README), f"{cls.__name__}.{name}"


def test_python_api_example_runs(capsys):
    block = README.split("## Python API", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    exec(compile(block, "README.md", "exec"), {})
    assert capsys.readouterr().out == "22226928 8190180480 (56, 56)\n"


def test_error_catalogue_is_documented_and_complete():
    import archspec

    codes_in_source = set()
    for path in Path(archspec.__file__).parent.rglob("*.py"):
        codes_in_source |= set(re.findall(r'"(AS\d{3,4})"', path.read_text()))
    assert codes_in_source <= set(CATALOGUE), codes_in_source - set(CATALOGUE)
    for kind in CATALOGUE.values():
        assert f"| `{kind.code}` | {kind.title} |" in README


def test_backbone_and_training_examples_run(capsys):
    blocks = README.split("## Python API", 1)[1].split("## Other libraries", 1)[0].split("```python")[2:5]
    scope: dict[str, object] = {}
    exec(compile("import torch\nimport archspec\n" + blocks[0].split("```")[0], "README.md", "exec"), scope)
    assert capsys.readouterr().out == (
        "{'stage2': (1, 128, 64, 80), 'stage3': (1, 320, 32, 40), 'stage4': (1, 448, 16, 20)}\n"
        "[128, 320, 448] [8, 16, 32]\n"
    )
    exec(compile(blocks[2].split("```")[0], "README.md", "exec"), scope)  # token labelling
    assert scope["logits"].shape == (2, 10) and scope["token_logits"].shape == (2, 49, 10)
    exec(compile(blocks[1].split("```")[0], "README.md", "exec"), scope)
