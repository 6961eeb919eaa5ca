"""The variants in specs/variants/: each extends a shipped spec, plans and builds, and differs from it
exactly as its comment says."""

from __future__ import annotations

import pytest
import torch
from conftest import ROOT, VARIANTS
from helpers import assert_params_match

import archspec
from archspec.diff import diff_plans
from archspec.loader import read_spec_file

EXPECTED = {
    "spectformer-all-attention": (12_041_510, ["stage 1", "stage 2"]),
    "spectformer-all-spectral": (31_713_318, ["stage 3", "stage 4"]),
    "spectformer-deep3": (17_908_134, ["stage 1", "stage 2", "stage 3", "stage 4"]),
    "spectformer-h-s-gfnet-layout": (24_375_760, ["stage 1", "stage 2", "stage 3", "stage 4", "head"]),
    "spectformer-pool-head": (11_769_062, ["head"]),
    "spectformer-pool-mixer": (13_338_150, ["stage 1"]),
    "spectformer-postnorm": (14_183_334, ["stage 1", "stage 2", "stage 3", "stage 4"]),
    "spectformer-sandwich": (14_199_206, ["stage 1", "stage 2", "stage 3", "stage 4"]),
    "spectformer-parallel": (25_676_454, ["stage 3"]),
    "spectformer-se-ffn": (14_835_462, ["stage 1", "stage 2", "stage 3", "stage 4"]),
    "spectformer-afno": (11_769_126, ["stage 1", "stage 2"]),
    "spectformer-convnext-form": (14_179_366, ["stage 1", "stage 2", "stage 3", "stage 4"]),
    "spectformer-window": (12_045_228, ["stage 1", "stage 2"]),
}


def test_every_variant_is_expected():
    assert sorted(p.stem for p in VARIANTS) == sorted(EXPECTED)


@pytest.mark.parametrize("path", VARIANTS, ids=lambda p: p.stem)
def test_variant_differs_from_its_parent_as_described(path):
    parent = read_spec_file(path)[0]["extends"]
    a, b = archspec.plan(archspec.load_spec(parent)), archspec.plan(archspec.load_spec(path))
    params, parts = EXPECTED[path.stem]
    assert b.params == params
    changes = diff_plans(a, b)
    assert [change.part for change in changes.changes] == parts
    assert sum(change.params for change in changes.changes) == b.params - a.params


@pytest.mark.parametrize("path", VARIANTS, ids=lambda p: p.stem)
def test_variant_builds_and_runs(path):
    plan = archspec.plan(archspec.load_spec(path, ["input.size=64"]))
    model = archspec.build(plan).eval()
    assert_params_match(plan, model)
    with torch.no_grad():
        assert tuple(model(torch.randn(1, 3, 64, 64)).shape) == (1, *plan.out_shape.dims)


def test_a_child_that_names_another_type_replaces_the_base_component(tmp_path):
    """extends + a different mixer type: the base's spectral fields (conv_in, conv_out) are not merged in."""
    child = tmp_path / "child.yaml"
    child.write_text(f"extends: {ROOT / 'specs' / 'spectformer.yaml'}\nstages:\n  0: {{mixer: {{type: attention}}}}\n")
    mixer = archspec.load_spec(child).spec.stages[0].mixer[0]
    assert mixer.type == "attention" and mixer.model_dump(exclude_defaults=True) == {}
