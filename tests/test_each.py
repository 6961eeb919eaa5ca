"""A stage's ``each``: per-block edits of its block, mixer and FFN, repeated to the stage's depth."""

from __future__ import annotations

import textwrap

import pytest
from conftest import tiny

import archspec
from archspec.errors import SpecError
from archspec.spec import validate
from archspec.summary import format_table


def _plan(**stage_changes):
    spec = tiny()
    spec["stages"][1].update(stage_changes)
    return archspec.plan(validate(spec))


def test_an_edit_merges_into_the_stages_mixer_and_repeats_to_the_depth():
    spec = tiny()
    spec["stages"][1]["depth"] = 4
    spec["stages"][1]["each"] = [{}, {"mixer": {"heads": 4}}]
    plan = archspec.plan(validate(spec))
    mixers = [block.part_of("mixer") for block in plan.stages[1].blocks]
    assert [m.spec.heads for m in mixers] == [2, 4, 2, 4]
    assert [m.spec.type for m in mixers] == ["attention"] * 4
    assert [b.spec_path for b in plan.stages[1].blocks] == [
        ("stages", 1, "mixer"),
        ("stages", 1, "each", 1, "mixer"),
        ("stages", 1, "mixer"),
        ("stages", 1, "each", 1, "mixer"),
    ]
    row = format_table(plan).splitlines()[4]
    assert "2×(attention, attention (heads 4)) + 4×mlp" in row
    model = archspec.build(plan)
    assert sum(p.numel() for p in model.parameters()) == plan.params


def test_an_edit_with_another_type_replaces_and_one_of_the_block_edits_its_fields():
    plan = _plan(each=[{"mixer": {"type": "pool"}}, {"ffn": {"ratio": 3}}])
    blocks = plan.stages[1].blocks
    assert [b.part_of("mixer").spec.type for b in blocks] == ["pool", "attention"]
    assert [b.part_of("ffn").spec.ratio for b in blocks] == [2, 3]
    plan = _plan(each=[{}, {"block": {"layer_scale": 1e-5}}])
    assert [getattr(b.spec, "layer_scale", None) for b in plan.stages[1].blocks] == [None, 1e-5]
    assert plan.stages[1].blocks[1].spec_path == ("stages", 1, "each", 1, "block")


def test_a_block_edit_can_change_a_resnet_blocks_activation():
    spec = {
        "name": "r",
        "input": {"size": 32},
        "stem": {"type": "conv", "layers": [{"channels": 8, "stride": 2}], "proj": None, "norm": "none"},
        "stages": [{"dim": 8, "depth": 3, "block": "basic", "norm": "none", "each": [{}, {"block": {"act": "silu"}}]}],
    }
    plan = archspec.plan(validate(spec))
    assert [b.spec.act.type for b in plan.stages[0].blocks] == ["relu", "silu", "relu"]
    assert "conv stem; 1×basic, 1×basic (act silu), 1×basic" in format_table(plan)


def _problems(tmp_path, text: str) -> list[str]:
    path = tmp_path / "each.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(SpecError) as info:
        archspec.plan(archspec.load_spec(path))
    return [line.removeprefix(f"{path}:") for line in info.value.lines()]


STAGES = """\
    name: Tiny
    input: {size: 32}
    stem: {type: patch, patch: 4}
    stages:
      - dim: 8
        depth: 2
        mixer: {type: attention, heads: 2}
"""


def test_problems_in_an_edit_point_at_the_edit(tmp_path):
    text = STAGES + "        each:\n          - {}\n          - {mixer: {heads: 3}, ffn: {act: silx}}\n"
    assert _problems(tmp_path, text) == [
        "10:35: stages[0].each[1].ffn.act.type: unknown act type 'silx'; did you mean 'silu'? (valid: "
        + ", ".join(archspec.registry.names("act"))
        + ")",
    ]
    text = STAGES + "        each:\n          - {}\n          - {mixer: {heads: 3}}\n"
    assert _problems(tmp_path, text) == [
        "10:18: stages[0].each[1].mixer.heads: 3 heads do not divide the stage's dim 8",
    ]


def test_more_entries_than_blocks_is_refused(tmp_path):
    text = STAGES + "        each: [{}, {}, {}]\n"
    assert _problems(tmp_path, text) == ["5:5: stages[0]: 'each' has 3 entries but the stage has depth 2"]


def test_a_mixer_edit_on_a_blocks_without_a_mixer_is_refused(tmp_path):
    text = STAGES.replace("mixer: {type: attention, heads: 2}", "block: basic")
    text += "        each: [{mixer: pool}, {}]\n"
    assert _problems(tmp_path, text) == [
        "8:13: stages[0].each[0].mixer: 'basic' blocks have no token mixer; remove 'mixer'",
    ]


def test_an_entry_holds_only_block_mixer_and_ffn(tmp_path):
    text = STAGES + "        each: [{norm: layernorm}, {}]\n"
    assert _problems(tmp_path, text) == [
        "8:13: stages[0].each[0].norm: unknown key 'norm' (valid keys: block, mixer, ffn)",
    ]


def test_an_unknown_key_in_an_edit_is_named_with_the_component_it_edits(tmp_path):
    text = STAGES.replace("{type: attention, heads: 2}", "{type: window_attention, heads: 2, window: 2}")
    text += "        each: [{}, {mixer: {shft: 1}}]\n"
    assert _problems(tmp_path, text) == [
        "8:25: stages[0].each[1].mixer.shft: unknown key 'shft' for mixer 'window_attention'; did you mean 'shift'?",
    ]
