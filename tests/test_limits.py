"""Limits enforced before the work they guard, strict values, and extends resolved as a user means it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT

import archspec
from archspec import budget, loader
from archspec.budget import BudgetError
from archspec.compose import OverrideError
from archspec.errors import ArchspecError, SpecError, SpecFileError
from archspec.schema import json_schema
from archspec.sweep import MAX_COMBINATIONS, combinations, run_sweep

SPEC = ROOT / "specs" / "spectformer.yaml"
TINY = "name: T\ninput: {size: 32}\nstages:\n  - {dim: 8, depth: 1, mixer: {type: spectral}, norm: {type: layernorm}}\n"


def _write(folder, name: str, text: str):
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def _problems(path, overrides=()) -> list[str]:
    with pytest.raises(SpecError) as info:
        archspec.load_spec(path, overrides)
    return info.value.lines()


# Files that are not regular files are refused before they are read.


def test_a_named_pipe_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    result = subprocess.run(
        [sys.executable, "-m", "archspec", "validate", str(fifo)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == f"{fifo}: is a named pipe, not a spec file [AS101]"


def test_a_device_is_refused():
    with pytest.raises(SpecFileError) as info:
        archspec.load_spec("/dev/zero")
    assert str(info.value) == "/dev/zero: is a character device, not a spec file"


# Only YAML's core types: no coercion, no tags beyond the core ones.


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!!binary aGVsbG8=", "1:7: unsupported YAML tag 'tag:yaml.org,2002:binary': specs may only hold mappings, "
                              "lists, strings, numbers and booleans"),
        ("2024-01-01", "1:7: unsupported YAML tag 'tag:yaml.org,2002:timestamp': specs may only hold mappings, "
                       "lists, strings, numbers and booleans (quote the value to make it a string)"),
        ("!!set {a, b}", "1:7: unsupported YAML tag 'tag:yaml.org,2002:set': specs may only hold mappings, "
                         "lists, strings, numbers and booleans"),
    ],
    ids=["binary", "date", "set"],
)  # fmt: skip
def test_tags_beyond_the_core_schema_are_refused(tmp_path, value, message):
    path = _write(tmp_path, "spec.yaml", f"name: {value}\n")
    with pytest.raises(SpecFileError) as info:
        archspec.load_spec(path)
    assert str(info.value) == f"{path}:{message}"


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("stages.0.depth=true", "stages[0].depth: input should be a valid integer (got True)"),
        ("stages.0.dim='8'", "stages[0].dim: input should be a valid integer (got '8')"),
        ("drop_path_rate=false", "drop_path_rate: input should be a valid number (got False)"),
        ("stages.0.norm.eps=.inf", "stages[0].norm.eps: input should be a finite number (got inf)"),
        ("stages.0.mixer.conv_in=1" + "0" * 200, "stages[0].mixer.conv_in: input should be less than or equal to "
                                                 f"255 (got 1{'0' * 200})"),
    ],
    ids=["bool-as-int", "string-as-int", "bool-as-float", "infinite", "200-digit"],
)  # fmt: skip
def test_values_are_never_coerced_or_unbounded(tmp_path, override, line):
    path = _write(tmp_path, "tiny.yaml", TINY)
    assert _problems(path, [override]) == [f"--set {override}: {line}"]


def _numbers(schema: object, where: str = "") -> list[tuple[str, dict]]:
    """Every integer or number sub-schema of a JSON Schema, with where it is."""
    found = []
    if isinstance(schema, dict):
        if schema.get("type") in ("integer", "number"):
            found.append((where, schema))
        for key, value in schema.items():
            found += _numbers(value, f"{where}/{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            found += _numbers(value, f"{where}/{index}")
    return found


def test_every_numeric_field_of_every_component_has_an_upper_bound():
    numbers = _numbers(json_schema())
    assert len(numbers) > 50  # every registered component is in the schema
    unbounded = [where for where, schema in numbers if "maximum" not in schema and "exclusiveMaximum" not in schema]
    assert unbounded == []


def test_the_total_depth_is_bounded_before_planning(tmp_path):
    stages = "".join("  - {dim: 8, depth: 1000, mixer: {type: spectral}}\n" for _ in range(64))
    path = _write(tmp_path, "deep.yaml", "name: deep\nstages:\n" + stages)
    assert _problems(path) == [
        f"{path}:2:1: stages: the stages hold 64,000 blocks in all; a model may have at most 1,024"
    ]


# Sizes are counted while parsing, across a whole extends chain.


def test_the_value_cap_stops_the_parser_where_it_is_passed(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("name: [" + ", ".join(["0"] * 80_000) + "]\n")  # 240 kB: under the byte cap
    with pytest.raises(SpecFileError) as info:
        archspec.load_spec(path)
    # The 10,000th value, counting the mapping and the list (not the key): the parser stopped right there.
    column = len("name: [") + 3 * (loader.MAX_NODES - 2) + 1
    assert str(info.value) == f"{path}:1:{column}: the spec expands to more than 10,000 values"


def test_the_value_cap_covers_the_bases_too(tmp_path):
    values = "[" + ", ".join(["1"] * 6_000) + "]"
    _write(tmp_path, "base.yaml", f"{TINY}extra: {values}\n")
    child = _write(tmp_path, "child.yaml", f"extends: base.yaml\nother: {values}\n")
    with pytest.raises(SpecFileError) as info:
        archspec.load_spec(child)
    # The child is read first and holds 6,000 values, so the base passes the cap for the two of them.
    assert str(info.value).endswith(": the spec expands to more than 10,000 values")
    assert str(info.value).startswith(f"{tmp_path / 'base.yaml'}:5:")


def test_the_byte_cap_covers_the_bases_too(tmp_path):
    padding = "# padding\n" * 15_000  # 150,000 bytes in each file: each passes alone, not both
    _write(tmp_path, "base.yaml", TINY + padding)
    child = _write(tmp_path, "child.yaml", "extends: base.yaml\n" + padding)
    assert archspec.load_spec(tmp_path / "base.yaml").spec.name == "T"
    with pytest.raises(SpecFileError) as info:
        archspec.load_spec(child)
    size, left = (tmp_path / "base.yaml").stat().st_size, 262_144 - child.stat().st_size
    assert str(info.value) == (
        f"{tmp_path / 'base.yaml'}: the file has {size:,} bytes; only {left:,} of the 262,144 bytes a spec and its "
        "bases may hold together are left for it"
    )


# extends: relative to the spec's own folder; a base must be a spec.


def test_extends_with_dotdot_resolves_against_the_spec_folder(tmp_path, monkeypatch):
    _write(tmp_path, "mid.yaml", "extends: spectformer\nname: Mid\n")
    (tmp_path / "sub").mkdir()
    child = _write(tmp_path / "sub", "child.yaml", "extends: ../mid.yaml\nstages: {2: {depth: 8}}\n")
    for folder in (tmp_path / "sub", tmp_path, ROOT):
        monkeypatch.chdir(folder)
        spec = archspec.load_spec(child).spec
        assert (spec.name, spec.stages[2].depth) == ("Mid", 8)


def test_a_base_that_is_not_a_spec_is_refused_without_quoting_it(tmp_path):
    _write(tmp_path, "settings.yaml", "password: hunter2\ntoken: abc\n")
    child = _write(tmp_path, "child.yaml", "extends: settings.yaml\n")
    with pytest.raises(SpecFileError) as info:
        archspec.load_spec(child)
    assert (
        str(info.value) == f"{child}:1:1: extends: settings.yaml is not an archspec spec (not a mapping of spec keys)"
    )


def test_index_keys_must_be_plain_decimals(tmp_path):
    child = _write(tmp_path, "child.yaml", "extends: spectformer\nstages: {1: {depth: 3}, '01': {depth: 2}}\n")
    with pytest.raises(SpecFileError) as info:
        archspec.load_spec(child)
    assert str(info.value) == f"{child}:2:25: stages: '01' is not a list index (write 0, 1, 2 …)"


def test_many_top_level_keys_merge_in_linear_time(tmp_path):
    # 4,500 keys: a merge that scanned every position for each key took many seconds on this.
    keys = "".join(f"k{i}: {i}\n" for i in range(4_500))
    child = _write(tmp_path, "child.yaml", "extends: spectformer\n" + keys)
    lines = _problems(child)
    assert len(lines) == 101
    assert lines[-1] == f"{child}:102:1: k100: and 4,400 more problems from here on (the first 100 are shown)"
    assert lines[0] == (
        f"{child}:2:1: k0: unknown key 'k0' (valid keys: name, input, num_classes, drop_path_rate, stem, stages, "
        "head, features)"
    )


# Work that allocates is refused before it allocates, and sweeps are counted before they are made.


def test_sweep_combinations_are_counted_before_any_is_made():
    grids = [f"stages.{i}.depth=" + ",".join(map(str, range(1, 1001))) for i in range(3)]
    with pytest.raises(ArchspecError) as info:
        combinations(grids)
    assert str(info.value) == (
        f"--grid: 1000 × 1000 × 1000 = 1,000,000,000 combinations; a sweep plans at most {MAX_COMBINATIONS:,} "
        "(split it up)"
    )


def test_sweep_measure_skips_variants_over_the_memory_budget(monkeypatch):
    monkeypatch.setattr(budget, "available_bytes", lambda: 2**20)
    rows = run_sweep(SPEC, ["stages.2.depth=4"], measure=True)
    assert [row.status for row in rows] == [
        "not measured: SpectFormer needs about 49.4 MiB of parameters (12,941,734 × 4 bytes) and 28.1 MiB of "
        "activations at batch 1, over the budget of 512.0 KiB (half of the 1.0 MiB available); check the spec for "
        "a typo, or measure it with archspec bench --no-budget"
    ]
    assert rows[0].latency_ms is None


def test_create_model_checks_the_memory_budget(monkeypatch):
    monkeypatch.setattr(budget, "available_bytes", lambda: 2**20)
    with pytest.raises(BudgetError) as info:
        archspec.create_model("spectformer")
    assert str(info.value) == (
        "SpectFormer needs about 54.1 MiB of parameters (14,183,334 × 4 bytes) and 30.5 MiB of activations at "
        "batch 1, over the budget of 512.0 KiB (half of the 1.0 MiB available); check the spec for a typo, or "
        "pass check_memory=False"
    )
    model = archspec.create_model("spectformer", check_memory=False, device="meta")
    assert sum(p.numel() for p in model.parameters()) == 14_183_334


def test_setting_a_list_item_past_the_end_is_a_usage_error():
    with pytest.raises(OverrideError) as info:
        archspec.load_spec(SPEC, ["stages.4={dim: 8, depth: 1}"])
    assert str(info.value) == "--set stages.4={dim: 8, depth: 1}: stages[4] is not an item of the list"


@pytest.mark.parametrize("command", ["export", "convert"])
def test_export_and_convert_check_the_memory_budget_before_building(command, tmp_path, monkeypatch, capsys):
    from archspec.cli import main

    monkeypatch.setattr(budget, "available_bytes", lambda: 2**20)
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"")  # never loaded: the budget refuses first
    argv = ["export", "spectformer", "-o", str(tmp_path / "x.pt2"), "--format", "pt2"]
    if command == "convert":
        argv = ["convert", "spectformer", str(weights), "-o", str(tmp_path / "x.pt")]
    assert main(argv) == 1
    message = capsys.readouterr().err.splitlines()[0]
    assert message.startswith("error: SpectFormer needs about 54.1 MiB of parameters (14,183,334 × 4 bytes)")
    assert message.endswith(
        f"check the spec for a typo, or {command} on a machine with more memory, or pass --no-budget [AS401]"
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["w.pt"]


def test_a_scalar_where_a_mapping_belongs_is_named_in_the_user_s_words(tmp_path):
    path = _write(tmp_path, "tiny.yaml", TINY)
    assert _problems(path, ["features=7"]) == ["--set features=7: features: input should be a mapping of keys (got 7)"]


def test_yaml_merge_keys_are_refused_before_they_are_copied(tmp_path):
    # Each level of merges copies the level below nine times: 500 bytes would grow to billions of keys.
    levels = ["&a0 {k: 0}"]
    for i in range(1, 9):
        levels.append(f"&a{i} {{<<: [{levels[-1]}, {', '.join([f'*a{i - 1}'] * 9)}]}}")
    path = _write(tmp_path, "merge.yaml", f"name: x\nbomb: {levels[-1]}\n")
    with pytest.raises(SpecFileError) as info:
        archspec.load_spec(path)
    assert str(info.value).endswith(
        ": YAML merge keys (<<) are not supported: use extends to build on another spec, or an alias"
    )


def test_exponent_floats_without_a_dot_are_numbers(tmp_path):
    path = _write(tmp_path, "tiny.yaml", TINY.replace("norm: {type: layernorm}", "norm: {type: layernorm, eps: 1e-5}"))
    assert archspec.load_spec(path).spec.stages[0].norm.eps == 1e-5
    assert archspec.load_spec(path, ["stages.0.norm.eps=2E-6"]).spec.stages[0].norm.eps == 2e-6


def test_mapping_keys_do_not_count_as_values(tmp_path):
    entries = ", ".join(f"k{i}: 0" for i in range(5_200))  # 5,200 values, 10,400 nodes with the keys
    path = _write(tmp_path, "wide.yaml", f"{TINY}extra: {{{entries}}}\n")
    assert _problems(path)[0].endswith("extra: unknown key 'extra' (valid keys: name, input, num_classes, "
                                       "drop_path_rate, stem, stages, head, features)")  # fmt: skip


def test_a_retyped_component_is_blamed_on_the_set_that_retyped_it(tmp_path):
    path = _write(tmp_path, "tiny.yaml", TINY.replace("size: 32", "size: 2"))
    with pytest.raises(SpecError) as info:
        archspec.plan(archspec.load_spec(path, ["stem.type=patch"]))
    assert info.value.lines() == [
        "--set stem.type=patch: stem.patch: the patch conv (kernel 4, stride 4, padding 0) does not fit the 2×2 grid"
    ]


def test_names_too_long_for_the_system_are_clean_errors(tmp_path):
    long = "a" * 300
    with pytest.raises(SpecFileError) as info:
        archspec.load_spec(long)
    assert str(info.value) == f"{long}: cannot read: File name too long"
    child = _write(tmp_path, "child.yaml", f"extends: {long}.yaml\n")
    with pytest.raises(SpecFileError) as info:
        archspec.load_spec(child)
    assert str(info.value) == (
        f"{child}:1:1: extends: no such file or shipped spec '{long}.yaml'; archspec list shows the shipped specs"
    )


def test_weights_that_are_not_a_regular_file_are_named_so(tmp_path):
    from archspec.weights_file import CheckpointError, check_file

    with pytest.raises(CheckpointError) as info:
        check_file(tmp_path)
    assert str(info.value) == f"{tmp_path}: not a regular file"
