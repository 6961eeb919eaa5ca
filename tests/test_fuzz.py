"""Property tests over the spec space: every spec either builds exactly as planned or is refused with
located errors, and no other exception ever escapes.

CI runs a bounded number of examples. ``pytest -m fuzz`` runs the same properties with
``ARCHSPEC_FUZZ_EXAMPLES`` examples each (default 10,000); add ``--hypothesis-show-statistics`` to see
how many were built and how many refused.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import typing
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import archspec
from archspec import registry
from archspec.compose import OverrideError
from archspec.errors import ArchspecError, SpecError, SpecFileError
from archspec.loader import parse_yaml
from archspec.slots import _SlotSchema

FUZZ_EXAMPLES = int(os.environ.get("ARCHSPEC_FUZZ_EXAMPLES", "10000"))
BUILD_LIMIT = 2_000_000  # parameters; mutated specs above this are planned but not built
LOCATED = re.compile(r"^fuzz\.yaml:\d+:\d+: \S")


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _field_values(name: str, info: Any, dim: int, depth: int) -> st.SearchStrategy[Any] | None:
    """Plausible values for one field of a component, read off its annotation and default; None leaves
    the field out. Nested component slots draw a registered component in turn."""
    if name in ("type", "blocks"):
        return None
    if name == "heads":
        return st.sampled_from(_divisors(dim))
    slot = next((meta for meta in info.metadata if isinstance(meta, _SlotSchema)), None)
    if slot is not None:
        return components(slot.kind, dim, depth - 1) if depth > 0 else None
    annotation, default = info.annotation, info.default
    if typing.get_origin(annotation) is typing.Literal:
        return st.sampled_from(typing.get_args(annotation))
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.sampled_from([1, 2, 3])
    if isinstance(default, float):
        return st.sampled_from([default, 0.1])
    return None


@st.composite
def components(draw: st.DrawFn, kind: str, dim: int, depth: int = 2) -> dict[str, Any]:
    """Any registered component of ``kind``, some of its fields set: new components are fuzzed unasked."""
    cls = draw(st.sampled_from(registry.components(kind)))
    data: dict[str, Any] = {"type": cls.type_name()}
    for name, info in cls.model_fields.items():
        values = _field_values(name, info, dim, depth)
        if values is not None and draw(st.booleans()):
            data[name] = draw(values)
    return data


@st.composite
def stages(draw: st.DrawFn, first: bool) -> dict[str, Any]:
    dim = draw(st.sampled_from([4, 6, 8, 12, 16]))
    depth = draw(st.integers(1, 3))
    block = draw(components("block", dim))
    stage: dict[str, Any] = {"dim": dim, "depth": depth, "block": block}
    cls = registry.get("block", block["type"])
    if cls.uses_mixer:
        if depth > 1 and draw(st.booleans()):
            split = draw(st.integers(1, depth - 1))
            stage["mixer"] = [{**draw(components("mixer", dim)), "blocks": split}, draw(components("mixer", dim))]
        else:
            stage["mixer"] = draw(components("mixer", dim))
    if cls.uses_ffn and draw(st.booleans()):
        stage["ffn"] = draw(components("ffn", dim))
    if draw(st.booleans()):
        stage["norm"] = draw(components("norm", dim))
    if not first and draw(st.booleans()):
        stage["downsample"] = draw(components("downsample", dim))
    return stage


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 3))
    stage_list = [draw(stages(first=i == 0)) for i in range(count)]
    if draw(st.booleans()):
        stem: dict[str, Any] = {"type": "patch", "patch": draw(st.integers(1, 4))}
    elif draw(st.booleans()):
        stem = draw(components("stem", stage_list[0]["dim"]))
    else:
        layers = [
            {
                "channels": draw(st.integers(1, 6)),
                "kernel": draw(st.sampled_from([1, 3])),
                "stride": draw(st.sampled_from([1, 2])),
            }
            for _ in range(draw(st.integers(1, 2)))
        ]
        stem = {
            "type": "conv",
            "layers": layers,
            "proj": {"kernel": draw(st.sampled_from([1, 3])), "stride": draw(st.sampled_from([1, 2]))},
        }
    head = draw(components("head", stage_list[-1]["dim"]))
    return {
        "name": "Fuzz",
        "input": {"channels": draw(st.integers(1, 3)), "size": [draw(st.integers(4, 40)), draw(st.integers(4, 40))]},
        "num_classes": draw(st.integers(1, 7)),
        "drop_path_rate": draw(st.sampled_from([0.0, 0.1, 0.5])),
        "stem": stem,
        "stages": stage_list,
        "head": head,
    }  # fmt: skip


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.integers(10**6, 10**12),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.lists(st.integers(0, 3), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A valid spec with one change: a value replaced by junk, a key removed, or an unknown key added."""
    data = draw(specs())
    path = draw(st.sampled_from(_paths(data)))
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    action = draw(st.sampled_from(["replace", "delete", "extra"]))
    if action == "replace":
        parent[path[-1]] = draw(JUNK)
    elif action == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[draw(st.text(min_size=1, max_size=6))] = draw(JUNK)
    return data


def check(data: Any) -> str:
    """Validate, plan and (if small) build one spec; return what happened. Any other exception fails."""
    text = yaml.safe_dump(data, sort_keys=False)
    try:
        raw, source = parse_yaml(text, "fuzz.yaml")
        loaded_plan = archspec.plan(archspec.LoadedSpec(archspec.validate(raw, source), source))
    except SpecError as exc:
        assert exc.problems
        for line in exc.lines():
            assert LOCATED.match(line), line
        return "refused"
    except SpecFileError as exc:
        assert str(exc).startswith("fuzz.yaml")
        return "refused (file)"
    if loaded_plan.params > BUILD_LIMIT:
        return "planned only"
    model = archspec.build(loaded_plan).eval()
    assert sum(p.numel() for p in model.parameters()) == loaded_plan.params
    with torch.no_grad():
        out = model(torch.randn(1, *loaded_plan.input.dims))
    assert tuple(out.shape) == (1, *loaded_plan.out_shape.dims)
    return "built"


QUICK = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
LONG = settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))


@QUICK
@given(specs())
def test_generated_specs_build_as_planned(data):
    event(check(data))


@QUICK
@given(mutated())
def test_mutated_specs_are_built_or_refused(data):
    event(check(data))


@QUICK
@given(st.text(max_size=200))
def test_arbitrary_text_never_escapes(text):
    try:
        raw, source = parse_yaml(text, "fuzz.yaml")
        archspec.plan(archspec.validate(raw, source))
    except ArchspecError:
        event("refused")
    else:
        event("valid")


@pytest.mark.fuzz
@LONG
@given(specs())
def test_fuzz_generated(data):
    event(check(data))


@pytest.mark.fuzz
@LONG
@given(mutated())
def test_fuzz_mutated(data):
    event(check(data))


# extends chains and --set sequences: composition either gives a spec that plans, or located errors.

CHAIN_FOLDER = tempfile.TemporaryDirectory(prefix="archspec-fuzz-")
LOCATED_IN_CHAIN = re.compile(r"^(\S+\.yaml:\d+:\d+|--set .*?): \S")


@st.composite
def child_change(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """A child's partial change to ``base``: a value replaced, a key deleted (null), an index-map
    override of a stage (in range or not), or a component given another type."""
    path = draw(st.sampled_from(_paths(base)))
    kind = draw(st.sampled_from(["value", "null", "index", "retype"]))
    if kind == "index":
        index = draw(st.sampled_from(["0", "1", "2", "7", "01", "-1"]))
        return {"stages": {index: {draw(st.sampled_from(["depth", "dim", "mixer", "ffn"])): draw(JUNK)}}}
    if kind == "retype":
        slot = draw(st.sampled_from(["mixer", "ffn", "norm", "block", "downsample"]))
        return {"stages": {"0": {slot: draw(components(slot, 8))}}, "head": draw(components("head", 8))}
    value = None if kind == "null" else draw(st.one_of(st.just(_at(base, path)), JUNK))
    change: Any = value
    for part in reversed(path):
        change = {str(part): change}
    return typing.cast(dict[str, Any], change)


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = (
            data[part]
            if isinstance(data, list) and isinstance(part, int) and part < len(data)
            else (data.get(part) if isinstance(data, dict) else None)
        )
    return data


def _override_text(path: tuple[Any, ...], value: Any) -> str:
    key = ".".join(str(part) for part in path) or "name"
    return f"{key}={json.dumps(value, allow_nan=True)}"


@st.composite
def chains(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[str]]:
    """A base spec, one to three children each extending the one before, and up to four --set arguments."""
    base = draw(specs())
    documents = [base]
    for _ in range(draw(st.integers(1, 3))):
        documents.append(draw(child_change(base)))
    paths = [*_paths(base), ("stages", 9, "depth"), ("stages", 7), ("head", "type"), ("nowhere", "x")]
    overrides = []
    for _ in range(draw(st.integers(0, 4))):
        path = draw(st.sampled_from(paths))
        overrides.append(_override_text(path, draw(st.one_of(st.just(_at(base, path)), JUNK))))
    return documents, overrides


def check_chain(documents: list[dict[str, Any]], overrides: list[str]) -> str:
    """Write the chain to files, load the last with the overrides and plan it; any escape fails."""
    folder = Path(tempfile.mkdtemp(dir=CHAIN_FOLDER.name))
    names = []
    for index, document in enumerate(documents):
        body = dict(document) if index == 0 else {"extends": names[-1], **document}
        path = folder / f"spec{index}.yaml"
        path.write_text(yaml.safe_dump(body, sort_keys=False))
        names.append(path.name)
    try:
        archspec.plan(archspec.load_spec(folder / names[-1], overrides))
    except SpecError as exc:
        assert exc.problems
        for line in exc.lines():
            assert LOCATED_IN_CHAIN.match(line.removeprefix(f"{folder}/")), line
        return "refused"
    except (SpecFileError, OverrideError) as exc:
        assert str(exc)
        return "refused (file or --set)"
    return "planned"


@QUICK
@given(chains())
def test_extends_chains_and_overrides_never_escape(chain):
    event(check_chain(*chain))


@pytest.mark.fuzz
@LONG
@given(chains())
def test_fuzz_extends_chains_and_overrides(chain):
    event(check_chain(*chain))
