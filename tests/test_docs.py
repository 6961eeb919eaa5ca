"""The README and docs/ document every command, option and spec field, so adding one without docs fails here.

The README is the user's guide (at most 800 lines) and links every file of docs/; every relative link and
anchor in them resolves. tests/test_examples.py runs their console examples.
"""

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
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS]
ALL_DOCS = "\n".join(page.read_text() for page in PAGES)
"""The README and every docs/*.md: what the coverage checks search."""


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
    assert f"archspec {command}" in ALL_DOCS
    for action in _subcommands()[command]._actions:
        for option in action.option_strings:
            if option not in ("-h", "--help"):
                assert f"{option}" in ALL_DOCS, f"{command} {option}"


SPEC_CLASSES = [ModelSpec, StageSpec, InputSpec, *registry.components()]


@pytest.mark.parametrize("model", SPEC_CLASSES, ids=lambda m: m.__name__)
def test_every_spec_field_is_documented(model):
    if model in registry.components():
        assert f"type: {model.type_name()}" in ALL_DOCS
    for cls in _models(model):
        for name in cls.model_fields:
            assert re.search(rf"\b{name}:", ALL_DOCS), f"{cls.__name__}.{name}"


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
        assert f"| `{kind.code}` | {kind.title} |" in ALL_DOCS


def test_backbone_and_training_examples_run(capsys):
    blocks = README.split("## Python API", 1)[1].split("\n## ", 1)[0].split("```python")[2:5]
    scope: dict[str, object] = {}
    exec(compile("import torch\nimport archspec\n" + blocks[0].split("```")[0], "README.md", "exec"), scope)
    assert capsys.readouterr().out == (
        "{'stage2': (1, 128, 64, 80), 'stage3': (1, 320, 32, 40), 'stage4': (1, 448, 16, 20)}\n"
        "[128, 320, 448] [8, 16, 32]\n"
    )
    exec(compile(blocks[2].split("```")[0], "README.md", "exec"), scope)  # token labelling
    assert scope["logits"].shape == (2, 10) and scope["token_logits"].shape == (2, 49, 10)
    exec(compile(blocks[1].split("```")[0], "README.md", "exec"), scope)


def test_readme_is_a_guide_of_at_most_800_lines():
    lines = README.count("\n")
    assert lines <= 800, f"README.md has {lines} lines; move reference material to docs/"


@pytest.mark.parametrize("page", DOCS, ids=lambda page: page.name)
def test_every_docs_page_is_linked_from_the_readme(page):
    assert f"](docs/{page.name})" in README or f"](docs/{page.name}#" in README, page.name


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text (code and links as their text), lower-cased, without
    punctuation but hyphens and underscores, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").replace("*", "")
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading's anchor in a Markdown text; a repeated one gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for line in _outside_code(text):
        match = re.match(r"^#{1,6} (.*?)\s*#*$", line)
        if match:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            found.add(base if count == 0 else f"{base}-{count}")
            seen[base] = count + 1
    return found


def _outside_code(text: str) -> list[str]:
    lines, fence = [], False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            fence = not fence
        elif not fence:
            lines.append(line)
    return lines


def test_slug_follows_github():
    assert slug("Variants: extends and --set") == "variants-extends-and---set"
    assert slug("`archspec fit`") == "archspec-fit"
    assert slug("timm's model contract") == "timms-model-contract"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_and_anchor_resolves(page):
    text = page.read_text()
    broken = []
    for line in _outside_code(text):
        line = re.sub(r"`[^`]*`", "``", line)  # a link written inside code is an example, not a link
        for target in re.findall(r"\]\(([^)\s]+)\)", line):
            if re.match(r"[a-z]+:", target):
                continue  # http:, https:, mailto:
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{target}: no such file")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text()):
                broken.append(f"{target}: no heading with that anchor in {linked.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)
