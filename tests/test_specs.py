"""Every shipped spec: valid, exact parameter counts, plan == module, forward shapes at two resolutions."""

from __future__ import annotations

import pytest
import torch
from conftest import SPECS
from helpers import assert_flops_match, assert_params_match

import archspec
from archspec.loader import read_spec_file

EXPECTED_PARAMS = {
    "spectformer.yaml": 14_183_334,
    "spectformer-h-s.yaml": 22_226_928,
    "spectformer-h-b.yaml": 33_052_880,
    "spectformer-h-l.yaml": 54_675_792,
}
EXPECTED_OUTPUT = {"spectformer.yaml": (6,)}


def test_every_spec_has_an_expected_count():
    assert sorted(p.name for p in SPECS) == sorted(EXPECTED_PARAMS)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_plan_params(path):
    plan = archspec.plan(archspec.load_spec(path))
    assert plan.params == EXPECTED_PARAMS[path.name]
    assert plan.out_shape.dims == EXPECTED_OUTPUT.get(path.name, (1000,))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_module_matches_plan(path):
    plan = archspec.plan(archspec.load_spec(path))
    model = archspec.build(plan)
    assert_params_match(plan, model)
    assert_flops_match(plan, model, batch=1)


@pytest.mark.parametrize("size", [(256, 256), (160, 224)], ids=["256x256", "160x224"])
@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_other_resolution(path, size):
    data, _ = read_spec_file(path)
    data["input"]["size"] = list(size)
    plan = archspec.plan(archspec.validate(data))
    model = archspec.build(plan).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, *size))
    assert tuple(out.shape) == (1, *plan.out_shape.dims)
    # The spectral filters follow each stage's grid: stride 4 then 8 for 3-stride-2 convs.
    for stage in plan.stages:
        for block in stage.blocks:
            mixer = model.get_submodule(block.child("m").module_path)
            if hasattr(mixer, "complex_weight"):
                h, w = stage.grid
                assert stage.grid == (size[0] // 2 ** (stage.index + 2), size[1] // 2 ** (stage.index + 2))
                assert tuple(mixer.complex_weight.shape) == (h, w // 2 + 1, stage.dim, 2)
