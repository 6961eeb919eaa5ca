"""Bad specs: every problem at once, one line each, as file:line:col: key.path: message."""

from __future__ import annotations

import textwrap

import pytest
from conftest import ROOT

import archspec
from archspec import registry
from archspec.errors import SpecError, SpecFileError, format_path


def _problems(tmp_path, text: str) -> list[str]:
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(SpecError) as info:
        archspec.plan(archspec.load_spec(path))
    prefix = f"{path}:"
    return [line.removeprefix(prefix) for line in info.value.lines()]


def test_schema_problems_are_all_reported_with_positions(tmp_path):
    assert _problems(
        tmp_path,
        """\
        name: Tiny
        input: {size: 32}
        stages:
          - dim: 8
            depth: 1
            mixer: {type: spectal}
            fnn: {type: mlp}
          - dim: 16
            depth: two
            mixer: {type: attention, head: 2}
        head: {type: pool, dropout: 0.1}
        """,
    ) == [
        "6:13: stages[0].mixer.type: unknown mixer type 'spectal'; did you mean 'spectral'? "
        f"(valid: {', '.join(registry.names('mixer'))})",
        "7:5: stages[0].fnn: unknown key 'fnn'; did you mean 'ffn'?",
        "9:5: stages[1].depth: input should be a valid integer (got 'two')",
        "10:30: stages[1].mixer.head: unknown key 'head' for mixer 'attention'; did you mean 'heads'?",
        "11:20: head.dropout: unknown key 'dropout' for head 'pool'; did you mean 'drop'?",
    ]


def test_missing_keys_and_types(tmp_path):
    assert _problems(
        tmp_path,
        """\
        name: 3D model
        stem: {patch: 4}
        stages:
          - depth: 1
            mixer: {type: spectral}
        """,
    ) == [
        "1:1: name: string should match pattern '^[A-Za-z_][A-Za-z0-9_.-]*$' (got '3D model')",
        f"2:1: stem: missing 'type' (one of: {', '.join(registry.names('stem'))})",
        "4:5: stages[0].dim: missing required key 'dim'",
    ]


def test_plan_contradictions_point_at_the_key(tmp_path):
    assert _problems(
        tmp_path,
        """\
        name: Tiny
        input: {size: 32}
        stem: {type: patch, patch: 4}
        stages:
          - dim: 8
            depth: 1
            mixer: {type: spectral}
          - dim: 12
            depth: 3
            mixer:
              - {type: spectral, blocks: 1}
              - {type: attention, heads: 5}
        head: {type: class_attention, mlp_ratio: 0.3}
        """,
    ) == [
        "12:27: stages[1].mixer[1].heads: 5 heads do not divide the stage's dim 12",
        "13:31: head.mlp_ratio: dim 12 × ratio 0.3 = 3.6 is not a whole number of channels",
    ]


def test_grid_too_small(tmp_path):
    assert _problems(
        tmp_path,
        """\
        name: Tiny
        input: {size: 16}
        stem: {type: patch, patch: 8}
        stages:
          - {dim: 8, depth: 1, mixer: {type: spectral}}
          - {dim: 8, depth: 1, mixer: {type: spectral}, downsample: {type: conv, kernel: 5, stride: 2, padding: 0}}
        """,
    ) == [
        "6:49: stages[1].downsample: the downsample conv (kernel 5, stride 2, padding 0) does not fit the 2×2 grid",
    ]


def test_pattern_must_cover_the_stage(tmp_path):
    assert _problems(
        tmp_path,
        """\
        name: Tiny
        input: {size: 32}
        stem: {type: patch}
        stages:
          - dim: 8
            depth: 4
            mixer: [{type: spectral, blocks: 1}, {type: attention, blocks: 2}]
          - dim: 8
            depth: 1
            downsample: {type: conv}
            mixer: {type: spectral}
        """,
    ) == [
        "7:5: stages[0].mixer: the pattern covers 1 + 2 = 3 blocks but the stage has depth 4",
    ]


def test_first_stage_downsample_is_refused(tmp_path):
    assert _problems(
        tmp_path,
        """\
        name: Tiny
        input: {size: 32}
        stem: {type: patch}
        stages:
          - {dim: 8, depth: 1, mixer: {type: spectral}, downsample: {type: conv}}
        """,
    ) == ["5:49: stages[0].downsample: the first stage is fed by the stem; remove 'downsample'"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "1:1: the file is empty"),
        (b"name: x\nname: y\n", "2:1: duplicate key 'name' (first written at {path}:1:1)"),
        (b"name: x\n  stages: [\n", "2:9: invalid YAML: mapping values are not allowed here"),
        (
            b"name: x\nstem: !!python/object:os.system {}\n",
            "2:7: unsupported YAML tag 'tag:yaml.org,2002:python/object:os.system': specs may only hold "
            "mappings, lists, strings, numbers and booleans",
        ),
        (b"\xff\xfe", "not UTF-8 text (bad byte at offset 0)"),
    ],
    ids=["empty", "duplicate", "syntax", "python-tag", "binary"],
)
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(SpecFileError) as info:
        archspec.load_spec(path)
    separator = "" if message[0].isdigit() else " "
    assert str(info.value) == f"{path}:{separator}{message.format(path=path)}"


def test_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(SpecError) as info:
        archspec.load_spec(path)
    assert info.value.lines() == [f"{path}:1:1: <root>: a spec must be a mapping of keys, got a list"]


def test_directory_and_missing_file(tmp_path):
    with pytest.raises(SpecFileError) as info:
        archspec.load_spec(tmp_path)
    assert str(info.value) == f"{tmp_path}: is a directory, not a spec file"
    with pytest.raises(SpecFileError) as info:
        archspec.load_spec(tmp_path / "nope.yaml")
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: no such file"


def test_alias_bomb_is_bounded(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SpecFileError) as info:
        archspec.load_spec(path)
    assert str(info.value).endswith("the spec expands to more than 10,000 values")


def test_absurd_sizes_are_refused_before_planning(tmp_path):
    assert _problems(
        tmp_path,
        """\
        name: Huge
        input: {size: 1000000}
        stem: {type: patch}
        stages:
          - {dim: 10000000, depth: 1000000000, mixer: {type: spectral}}
        """,
    ) == [
        "2:9: input.size: image size must be between 1 and 16,384, got 1000000×1000000",
        "5:6: stages[0].dim: input should be less than or equal to 65536 (got 10000000)",
        "5:21: stages[0].depth: input should be less than or equal to 1000 (got 1000000000)",
    ]


def test_problems_carry_catalogue_codes(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: Tiny\ninput: {size: 32}\nstem: {patch: 4}\nstages:\n"
        "  - {dim: 12, depth: 1, mixer: {type: spectal}, fnn: {}}\n"
        "  - {dim: 12, depth: x, mixer: {type: attention}}\n"
    )
    with pytest.raises(SpecError) as info:
        archspec.load_spec(path)
    assert [(format_path(p.path), p.code) for p in info.value.problems] == [
        ("stem", "AS202"),
        ("stages[0].mixer.type", "AS203"),
        ("stages[0].fnn", "AS201"),
        ("stages[1].depth", "AS204"),
    ]
    path.write_text("name: Tiny\ninput: {size: 32}\nstem: {type: patch}\nstages:\n"
                    "  - {dim: 12, depth: 1, mixer: {type: attention, heads: 5}}\n")  # fmt: skip
    with pytest.raises(SpecError) as info:
        archspec.plan(archspec.load_spec(path))
    assert [p.code for p in info.value.problems] == ["AS301"]


def test_odd_keys_are_quoted_in_paths(tmp_path):
    path = tmp_path / "odd.yaml"
    path.write_text(
        "name: x\n'': 1\nhead: {type: pool, 'my key': 2}\nstages: [{dim: 8, depth: 1, mixer: {type: spectral}}]\n"
    )
    with pytest.raises(SpecError) as info:
        archspec.load_spec(path)
    assert [line.removeprefix(f"{path}:") for line in info.value.lines()] == [
        "2:1: ['']: unknown key '' "
        "(valid keys: name, input, num_classes, drop_path_rate, stem, stages, head, features)",
        "3:20: head['my key']: unknown key 'my key' for head 'pool' (valid keys: type, norm, conv, mlp, drop)",
    ]


def test_numbers_must_be_finite(tmp_path):
    assert _problems(
        tmp_path,
        """\
        name: Tiny
        drop_path_rate: .nan
        stages:
          - {dim: 8, depth: 1, mixer: spectral, norm: {type: layernorm, eps: .inf}}
        """,
    ) == [
        "2:1: drop_path_rate: input should be a finite number (got nan)",
        "4:65: stages[0].norm.eps: input should be a finite number (got inf)",
    ]


def test_a_stride_over_a_one_cell_grid_is_refused():
    with pytest.raises(SpecError) as info:
        archspec.plan(archspec.load_spec(ROOT / "specs" / "spectformer.yaml", ["input.size=16"]))
    assert [(format_path(p.path), p.message) for p in info.value.problems] == [
        (
            "stages[3].downsample",
            "the downsample conv (stride 2) meets a 1×1 grid: a stride cannot reduce a side of one cell "
            "(use a larger input or fewer strided layers)",
        )
    ]
