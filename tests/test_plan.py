"""The planner: derived numbers, block patterns and names."""

from __future__ import annotations

from conftest import tiny

import archspec
from archspec.plan import drop_path_rates


def test_drop_path_is_a_global_linspace():
    assert drop_path_rates(5, 0.2) == [0.0, 0.05, 0.1, 0.15000000000000002, 0.2]
    assert drop_path_rates(1, 0.2) == [0.0]
    plan = archspec.plan(archspec.validate(tiny(drop_path_rate=0.2)))
    rates = [block.args["drop_path"] for stage in plan.stages for block in stage.blocks]
    assert rates == [0.0, 0.1, 0.2]


def test_mixer_pattern_expands_per_block():
    spec = tiny()
    spec["stages"][1] = {
        "dim": 16,
        "depth": 5,
        "mixer": [{"type": "spectral", "blocks": 2}, {"type": "attention", "heads": 4}],
    }
    plan = archspec.plan(archspec.validate(spec))
    blocks = plan.stages[1].blocks
    assert [b.args["mixer"] for b in blocks] == ["spectral"] * 2 + ["attention"] * 3
    assert [b.child("m").module_path for b in blocks] == [f"block2.{i}.m" for i in range(5)]
    assert [b.child("m").spec_path for b in blocks] == [("stages", 1, "mixer", 0)] * 2 + [("stages", 1, "mixer", 1)] * 3
    model = archspec.build(plan)
    assert [type(block.m).__name__ for block in model.block2] == ["SpectralGatingNetwork"] * 2 + ["Attention"] * 3


def test_filter_size_follows_the_grid():
    plan = archspec.plan(archspec.validate(tiny(input={"size": [48, 40]})))
    mixer = plan.stages[0].blocks[0].child("m")
    assert (mixer.args["height"], mixer.args["width"]) == (12, 10)
    assert mixer.params == 12 * (10 // 2 + 1) * 8 * 2
    assert plan.stages[1].grid == (6, 5)


def test_names_and_shapes():
    plan = archspec.plan(archspec.validate(tiny()))
    assert [node.module_paths for node in plan.nodes] == [
        ("patch_embed1",), ("block1.0",), ("norm1",),
        ("patch_embed2",), ("block2.0",), ("block2.1",), ("norm2",),
        ("head",),
    ]  # fmt: skip
    assert [str(node.out_shape) for node in plan.nodes] == [
        "64×8",
        "64×8",
        "64×8",
        "16×16",
        "16×16",
        "16×16",
        "16×16",
        "5",
    ]
    assert plan.params == 7_141  # stem 408 + stage 1 968 + stage 2 5,680 + head 85
