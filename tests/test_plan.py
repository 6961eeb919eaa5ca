"""The planner: derived numbers, block patterns and names."""

from __future__ import annotations

import pytest
from conftest import ROOT, SHIPPED, tiny

import archspec
from archspec.errors import SpecError
from archspec.nodes import BlockInput, Shape, Site
from archspec.plan import PlanCache, drop_path_rates


def test_drop_path_is_a_global_linspace():
    assert drop_path_rates(5, 0.2) == [0.0, 0.05, 0.1, 0.15000000000000002, 0.2]
    assert drop_path_rates(1, 0.2) == [0.0]
    plan = archspec.plan(archspec.validate(tiny(drop_path_rate=0.2)))
    rates = [block.drop_path for stage in plan.stages for block in stage.blocks]
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
    assert [b.part_of("mixer").component for b in blocks] == ["spectral"] * 2 + ["attention"] * 3
    assert [b.child("m").module_path for b in blocks] == [f"block2.{i}.m" for i in range(5)]
    assert [b.child("m").spec_path for b in blocks] == [("stages", 1, "mixer", 0)] * 2 + [("stages", 1, "mixer", 1)] * 3
    model = archspec.build(plan)
    assert [type(block.m).__name__ for block in model.block2] == ["SpectralGatingNetwork"] * 2 + ["Attention"] * 3


def test_filter_size_follows_the_grid():
    plan = archspec.plan(archspec.validate(tiny(input={"size": [48, 40]})))
    mixer = plan.stages[0].blocks[0].child("m")
    assert (mixer.args.height, mixer.args.width) == (12, 10)
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


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_a_plan_through_a_warm_cache_equals_a_plan_without_one(path):
    spec = archspec.load_spec(path)
    cache = PlanCache()
    cold = archspec.plan(spec, cache)
    warm = archspec.plan(spec, cache)
    blocks = sum(len(stage.blocks) for stage in cold.stages)
    assert (cache.misses, cache.hits) == (blocks, blocks)
    assert cold == warm == archspec.plan(spec)


def test_variants_sharing_a_cache_get_their_own_drop_path_ramp_and_names():
    cache = PlanCache()
    base = tiny(drop_path_rate=0.2)
    depths = [1, 3, 2]
    for depth in depths:
        spec = {**base, "stages": [base["stages"][0], {**base["stages"][1], "depth": depth}]}
        fresh = archspec.plan(archspec.validate(spec))
        cached = archspec.plan(archspec.validate(spec), cache)
        assert cached == fresh
        rates = [block.drop_path for stage in cached.stages for block in stage.blocks]
        assert rates == drop_path_rates(1 + depth, 0.2)
        assert [block.module_path for block in cached.stages[1].blocks] == [f"block2.{j}" for j in range(depth)]
    # stage 1's block and stage 2's first three are planned once each; the rest come from the cache
    assert (cache.misses, cache.hits) == (4, 1 + 1 + 1 + 2)


def test_the_cache_keeps_at_most_its_size_dropping_the_least_recently_used():
    cache = PlanCache(size=2)
    spec = archspec.validate(tiny())  # three blocks: block1.0, block2.0, block2.1
    archspec.plan(spec, cache)
    assert (cache.misses, cache.hits) == (3, 0)
    archspec.plan(spec, cache)  # block1.0 was dropped, which drops block2.0, which drops block2.1
    assert (cache.misses, cache.hits) == (6, 0)
    assert len(cache) == 2


def test_a_block_that_cannot_be_planned_is_reported_by_every_plan_that_meets_it():
    cache = PlanCache()
    bad = tiny()
    bad["stages"][1]["mixer"] = {"type": "attention", "heads": 5}  # 16 channels do not split into 5 heads
    for _ in range(2):
        with pytest.raises(SpecError) as raised:
            archspec.plan(archspec.validate(bad), cache)
        assert [problem.path for problem in raised.value.problems] == [("stages", 1, "mixer", "heads")]
    assert cache.hits == 1  # only block1.0, which is valid, was kept


def test_a_block_whose_spec_cannot_be_hashed_is_planned_every_time():
    class Unhashable:
        __hash__ = None  # as a model with a dict field is

    planned = archspec.plan(archspec.validate(tiny()))
    given = BlockInput(Shape(8, (8, 8), tokens=True), 8, True, None, None, (), Site((), "block1.0"))  # type: ignore[arg-type]
    cache, calls = PlanCache(), []
    for _ in range(2):
        node = cache.block(Unhashable(), given, lambda block, given: calls.append(block) or planned.head)  # type: ignore[arg-type]
        assert node is planned.head
    assert (len(calls), cache.misses, cache.hits, len(cache)) == (2, 2, 0, 0)
