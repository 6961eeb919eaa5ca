"""extends and --set: merge rules, origins of values, and refusals."""

from __future__ import annotations

import textwrap

import pytest
from conftest import ROOT

import archspec
from archspec.compose import OverrideError, parse_override
from archspec.errors import SpecError, SpecFileError


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_extends_a_shipped_spec_with_per_index_overrides(tmp_path):
    child = _write(
        tmp_path,
        "child.yaml",
        """\
        extends: spectformer-h-s
        name: Variant
        stages:
          2: {depth: 8, mixer: {type: attention, heads: 4}}
        head: {aux_head: null}
        """,
    )
    loaded = archspec.load_spec(child)
    spec = loaded.spec
    assert spec.name == "Variant"
    assert [s.depth for s in spec.stages] == [3, 4, 8, 3]
    assert spec.stages[2].mixer[0].heads == 4
    assert spec.stages[2].ffn.ratio == 4  # kept from the base
    assert spec.head.aux_head is False  # null deleted the key: back to the default
    assert str(loaded.source.locate(("stages", 2, "depth"))) == f"{child}:4:7"
    base = ROOT / "archspec" / "specs" / "spectformer-h-s.yaml"  # the shipped file itself (specs/ links there)
    assert str(loaded.source.locate(("stages", 0, "dim"))) == f"{base}:20:5"
    # Two more stage-3 blocks (norms, attention, pvt2 with hidden 1280), and no aux head (448·1000 + 1000).
    block = 4 * 320 + (4 * 320 * 320 + 4 * 320) + (2 * 320 * 1280 + 1280 + 320 + 10 * 1280)
    assert archspec.plan(loaded).params == 22_226_928 + 2 * block - 449_000 == 24_269_448


def test_lists_are_replaced_whole(tmp_path):
    base = (
        "name: Base\ninput: {size: 32}\nstem: {type: patch}\nstages:\n"
        "  - {dim: 8, depth: 1, mixer: {type: spectral}}\n  - {dim: 16, depth: 1, mixer: {type: spectral}}\n"
    )
    _write(tmp_path, "base.yaml", base)
    child = _write(
        tmp_path, "child.yaml", "extends: base.yaml\nstages:\n  - {dim: 4, depth: 2, mixer: {type: spectral}}\n"
    )
    spec = archspec.load_spec(child).spec
    assert [(s.dim, s.depth) for s in spec.stages] == [(4, 2)]


def test_errors_point_into_the_file_that_wrote_the_value(tmp_path):
    _write(tmp_path, "base.yaml", "name: Base\ninput: {size: 32}\nstem: {type: patch}\nstages:\n"
           "  - {dim: 8, depth: 1, mixer: {type: attention, heads: 3}}\n")  # fmt: skip
    child = _write(tmp_path, "child.yaml", "extends: base.yaml\nnum_classes: 0\n")
    with pytest.raises(SpecError) as info:
        archspec.plan(archspec.load_spec(child))
    assert info.value.lines() == [f"{child}:2:1: num_classes: input should be greater than or equal to 1 (got 0)"]
    with pytest.raises(SpecError) as info:
        archspec.plan(archspec.load_spec(child, ["num_classes=3"]))
    assert info.value.lines() == [
        f"{tmp_path / 'base.yaml'}:5:49: stages[0].mixer.heads: 3 heads do not divide the stage's dim 8"
    ]


def test_cycles_missing_bases_and_escapes(tmp_path):
    one = _write(tmp_path, "one.yaml", "extends: two.yaml\nname: One\n")
    _write(tmp_path, "two.yaml", "extends: one.yaml\n")
    with pytest.raises(SpecFileError) as info:
        archspec.load_spec(one)
    assert str(info.value) == f"{tmp_path / 'two.yaml'}:1:1: extends: cycle one.yaml → two.yaml → one.yaml"

    missing = _write(tmp_path, "missing.yaml", "name: M\nextends: nowhere.yaml\n")
    with pytest.raises(SpecFileError) as info:
        archspec.load_spec(missing)
    assert str(info.value) == (
        f"{missing}:2:1: extends: no such file or shipped spec 'nowhere.yaml'; archspec list shows the shipped specs"
    )
    typo = _write(tmp_path, "typo.yaml", "name: T\nextends: resnet19\n")
    with pytest.raises(SpecFileError) as info:
        archspec.load_spec(typo)
    assert str(info.value) == (
        f"{typo}:2:1: extends: no such file or shipped spec 'resnet19'; did you mean resnet18, resnet50?"
    )

    escape = _write(tmp_path, "escape.yaml", "extends: /etc/hostname\n")
    with pytest.raises(SpecFileError) as info:
        archspec.load_spec(escape)
    assert str(info.value) == f"{escape}:1:1: extends: /etc/hostname is not a .yaml file"


def test_overrides_are_yaml_typed_and_located():
    spec_path = ROOT / "specs" / "spectformer.yaml"
    loaded = archspec.load_spec(spec_path, ["stages.2.depth=8", "input.size=[256, 192]", "stages[0].mixer.conv_in=5"])
    assert loaded.spec.stages[2].depth == 8
    assert loaded.spec.input.size == (256, 192)
    assert loaded.spec.stages[0].mixer[0].conv_in == 5
    assert str(loaded.source.locate(("stages", 2, "depth"))) == "--set stages.2.depth=8"
    with pytest.raises(SpecError) as info:
        archspec.load_spec(spec_path, ["stages.2.dpth=8"])
    assert info.value.lines() == ["--set stages.2.dpth=8: stages[2].dpth: unknown key 'dpth'; did you mean 'depth'?"]


def test_changing_a_component_type_starts_from_its_defaults():
    loaded = archspec.load_spec(ROOT / "specs" / "spectformer.yaml", ["stages.1.mixer.type=attention"])
    mixer = loaded.spec.stages[1].mixer[0]
    assert mixer.type == "attention" and mixer.model_dump(exclude_defaults=True) == {}  # every field at its default


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("depth", "--set depth: expected KEY.PATH=VALUE, e.g. --set stages.2.depth=8"),
        ("a..b c=1", "--set a..b c=1: 'a..b c' has an empty key (two dots in a row, or a dot at an end)"),
        ("a..b=1", "--set a..b=1: 'a..b' has an empty key (two dots in a row, or a dot at an end)"),
        ("a b=1", "--set a b=1: 'a b' is not a key path like stages.2.depth"),
        ("stages.9.depth=1", "--set stages.9.depth=1: stages[9]: index 9 is out of range (stages has 4 items)"),
        ("name.x=1", "--set name.x=1: name holds no keys to set"),
    ],
)
def test_bad_overrides(text, message):
    with pytest.raises(OverrideError) as info:
        archspec.load_spec(ROOT / "specs" / "spectformer.yaml", [parse_override(text)])
    assert str(info.value) == message


def test_set_order_does_not_matter_when_a_type_changes():
    """Fields set before the type change are kept for the new type; the old type's fields are not."""
    spec = ROOT / "specs" / "spectformer.yaml"
    first = archspec.load_spec(spec, ["stages.1.mixer.heads=4", "stages.1.mixer.type=attention"]).spec
    second = archspec.load_spec(spec, ["stages.1.mixer.type=attention", "stages.1.mixer.heads=4"]).spec
    assert first.stages[1].mixer == second.stages[1].mixer
    assert first.stages[1].mixer[0].model_dump(exclude_defaults=True) == {"heads": 4}


def test_a_key_a_set_creates_is_blamed_on_the_set():
    with pytest.raises(SpecError) as info:
        archspec.load_spec(ROOT / "specs" / "spectformer.yaml", ["stagez.2.depth=8"])
    assert info.value.lines() == ["--set stagez.2.depth=8: stagez: unknown key 'stagez'; did you mean 'stages'?"]


SPECTFORMER = str(ROOT / "specs" / "spectformer.yaml")


@pytest.mark.parametrize(
    ("overrides", "params"),
    [
        (["stages.0.block.norm=rmsnorm"], 14_182_950),  # 3 blocks × 2 norms lose their 64-wide bias
        (["stages.0.block.layer_scale=1e-5"], 14_183_718),  # 3 blocks × 2 scales of 64
        (["stages.0.block.type=flow", "stages.0.block.parts.norm2.norm=rmsnorm"], 14_183_142),  # one norm of 3 blocks
    ],
)
def test_set_reaches_into_a_defaulted_slot(overrides, params):
    plan = archspec.plan(archspec.load_spec(SPECTFORMER, overrides))
    assert plan.params == params
    assert plan.stages[0].blocks[0].component == ("flow" if "type" in overrides[0] else "prenorm")


def test_a_child_changes_a_defaulted_block_by_its_fields(tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text(f"extends: {SPECTFORMER}\nstages:\n  0: {{block: {{layer_scale: 1.0e-5}}}}\n")
    assert archspec.plan(archspec.load_spec(child)).params == 14_183_718


def test_a_mapping_of_another_types_fields_still_needs_its_type(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("name: x\nstem: {patch: 4}\nstages: [{dim: 8, depth: 1, mixer: {type: attention, heads: 1}}]\n")
    with pytest.raises(SpecError) as caught:
        archspec.load_spec(spec)
    assert str(caught.value).splitlines() == [f"{spec}:2:1: stem: missing 'type' (one of: conv, patch)"]
