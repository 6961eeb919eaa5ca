"""--set and --grid settings are bounded like YAML input: key paths by depth and length, values by size,
and the number of settings, each refused before it is parsed, with a short message."""

from __future__ import annotations

import pytest
from conftest import ROOT

import archspec
from archspec.cli import main
from archspec.compose import MAX_KEY_CHARS, MAX_OVERRIDES, OverrideError, parse_override
from archspec.errors import SpecError
from archspec.loader import MAX_BYTES, MAX_DEPTH

SPEC = str(ROOT / "specs" / "spectformer.yaml")
DEEP = ".".join(["a"] * 20_000)
"""A key path of 20,000 levels (39,999 characters)."""


def _refusal(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The first stderr line of a command refused as a usage error (exit status 2)."""
    assert main(argv) == 2
    return capsys.readouterr().err.splitlines()[0]


def test_the_limits_are_those_of_a_spec_file():
    assert (MAX_DEPTH, MAX_BYTES, MAX_KEY_CHARS, MAX_OVERRIDES) == (64, 262_144, 1_024, 1_000)


def test_a_set_key_path_of_20000_levels_is_refused_by_its_depth(capsys):
    assert _refusal(["validate", SPEC, "--set", f"{DEEP}=1"], capsys) == (
        f"error: --set {'a.' * 37}… (39,927 more characters): the key path has 20,000 levels; "
        "a spec nests at most 64 [AS601]"
    )


def test_a_deep_path_into_a_list_is_refused_alike(capsys):
    deep = "stages." + ".".join(["0"] * 20_000)
    assert _refusal(["validate", SPEC, "--set", f"{deep}=1"], capsys) == (
        f"error: --set stages.{'0.' * 33}0… (39,934 more characters): the key path has 20,001 levels; "
        "a spec nests at most 64 [AS601]"
    )


def test_bracketed_indices_count_as_levels(capsys):
    deep = "stages" + "[0]" * 70
    assert _refusal(["validate", SPEC, "--set", f"{deep}=1"], capsys) == (
        f"error: --set stages{'[0]' * 22}[0… (144 more characters): the key path has 71 levels; "
        "a spec nests at most 64 [AS601]"
    )


def test_a_grid_key_path_of_20000_levels_is_refused_before_any_variant(capsys):
    assert _refusal(["sweep", SPEC, "--grid", f"{DEEP}=1,2"], capsys) == (
        f"error: --grid {'a.' * 36}a… (39,930 more characters): the key path has 20,000 levels; "
        "a spec nests at most 64 [AS601]"
    )


def test_a_long_key_with_few_levels_is_refused_by_its_length(capsys):
    key = "stages.0." + "k" * 5_000
    assert _refusal(["validate", SPEC, "--set", f"{key}=1"], capsys) == (
        f"error: --set stages.0.{'k' * 65}… (4,937 more characters): the key path has 5,009 characters; "
        "a key path has at most 1,024 [AS601]"
    )
    assert _refusal(["sweep", SPEC, "--grid", f"{key}=1,2"], capsys).endswith(
        ": the key path has 5,009 characters; a key path has at most 1,024 [AS601]"
    )


def test_a_key_path_at_the_limits_is_parsed():
    deepest = parse_override(".".join(["a"] * MAX_DEPTH) + "=1")
    assert len(deepest.path) == MAX_DEPTH
    longest = parse_override("k" * MAX_KEY_CHARS + "=1")
    assert longest.path == ("k" * MAX_KEY_CHARS,)
    with pytest.raises(SpecError) as info:  # within the limits, a key the spec does not have is an ordinary problem
        archspec.load_spec(SPEC, [".".join(["a"] * MAX_DEPTH) + "=1"])
    assert info.value.lines()[0].startswith("--set a.a.a.")


def test_a_ten_megabyte_value_is_refused_unparsed(capsys):
    line = _refusal(["validate", SPEC, "--set", "name=" + "[" * (10 * 2**20)], capsys)
    assert line == (
        f"error: --set name={'[' * 69}… (10,485,691 more characters): the value has 10,485,760 bytes; "
        "a spec file holds at most 262,144 [AS601]"
    )


def test_a_value_is_measured_in_utf8_bytes():
    with pytest.raises(OverrideError) as info:
        parse_override("name=" + "é" * 140_000)
    assert str(info.value).endswith(": the value has 280,000 bytes; a spec file holds at most 262,144")
    assert parse_override("name=" + "é" * 100_000).value == "é" * 100_000


def test_the_values_of_a_grid_are_bounded_together(capsys):
    values = ",".join(["1"] * 200_000)
    assert _refusal(["sweep", SPEC, "--grid", f"num_classes={values}"], capsys).endswith(
        "… (399,938 more characters): the values have 399,999 bytes; a spec file holds at most 262,144 [AS601]"
    )


def test_a_value_nested_below_a_deep_path_counts_towards_the_depth():
    path = ".".join(["a"] * 60)
    with pytest.raises(OverrideError) as info:
        parse_override(f"{path}=[[[[[1]]]]]")
    assert str(info.value) == (
        f"--set {'a.' * 37}… (57 more characters): the key path has 60 levels and its value nests 5 more; "
        "a spec nests at most 64"
    )
    assert parse_override(f"{path}=[[[[1]]]]").value == [[[[1]]]]


def test_a_deeply_nested_value_is_refused_by_the_yaml_limit():
    with pytest.raises(archspec.errors.SpecFileError) as info:
        parse_override("name=" + "[" * 65 + "]" * 65)
    assert str(info.value) == "--set name=" + "[" * 65 + "]" * 65 + ":1:65: the spec nests deeper than 64 levels"


def test_a_malformed_long_setting_is_quoted_short(capsys):
    assert _refusal(["validate", SPEC, "--set", "x" * 100_000], capsys) == (
        f"error: --set {'x' * 74}… (99,926 more characters): expected KEY.PATH=VALUE, e.g. --set stages.2.depth=8 "
        "[AS601]"
    )
    assert main(["sweep", SPEC, "--grid", "x" * 100_000]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        f"error: --grid {'x' * 73}… (99,927 more characters): expected KEY.PATH=V1,V2,... [AS601]"
    )


def test_the_number_of_settings_is_bounded(capsys):
    many = [arg for index in range(MAX_OVERRIDES + 1) for arg in ("--set", f"num_classes={index + 1}")]
    assert _refusal(["validate", SPEC, *many], capsys) == (
        "error: --set: 1,001 overrides; a spec takes at most 1,000 (--set and --grid settings together) [AS601]"
    )
    grids = [arg for index in range(MAX_OVERRIDES + 1) for arg in ("--grid", f"num_classes={index + 1}")]
    assert _refusal(["sweep", SPEC, *grids], capsys) == (
        "error: --grid: 1,001 options; a spec takes at most 1,000 overrides [AS601]"
    )
    assert main(["validate", "-q", SPEC, *many[2:]]) == 0  # 1,000 are taken


def test_repeated_type_changes_keep_only_what_set_wrote():
    changes = [f"stages.1.mixer.type={'attention' if index % 2 == 0 else 'spectral'}" for index in range(401)]
    loaded = archspec.load_spec(SPEC, ["stages.1.mixer.heads=4", *changes])
    mixer = loaded.spec.stages[1].mixer[0]
    assert mixer.type == "attention" and mixer.model_dump(exclude_defaults=True) == {"heads": 4}


def test_a_component_replaced_whole_after_a_type_change_starts_afresh():
    """Keys inside a mapping written by one --set have no positions of their own: a later type change drops them."""
    overrides = [
        "stages.1.mixer.type=attention",
        "stages.1.mixer={type: spectral, foo: 1}",
        "stages.1.mixer.type=attention",
    ]
    mixer = archspec.load_spec(SPEC, overrides).spec.stages[1].mixer[0]
    assert mixer.type == "attention" and mixer.model_dump(exclude_defaults=True) == {}
