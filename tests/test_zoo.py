"""The zoo: every spec in specs/zoo/ against the reference data in tests/data/zoo/ (made by
benchmarks/zoo_reference.py with timm and the official GFNet code, neither of which the tests need).

For each model: the planned and built parameter counts equal the reference's; the reference's own
state_dict (rebuilt from its key/shape list with seeded values) converts to archspec's names, loads
strictly, and gives the reference's logits on the seeded input.
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import DATA, ROOT
from helpers import assert_flops_match, assert_params_match

import archspec
from archspec.checkpoint import load_state
from archspec.testing import seeded_input, seeded_state_dict

ZOO = sorted((ROOT / "specs" / "zoo").glob("*.yaml"))
REFERENCES = sorted((DATA / "zoo").glob("*.json"))


def _reference(name: str) -> dict:
    return json.loads((DATA / "zoo" / f"{name}.json").read_text())


def test_every_reference_has_a_spec_and_every_spec_a_reference():
    assert sorted(p.stem for p in ZOO) == sorted(p.stem for p in REFERENCES)


@pytest.mark.parametrize("path", ZOO, ids=lambda p: p.stem)
def test_parameter_count_equals_the_reference(path):
    reference = _reference(path.stem)
    plan = archspec.plan(archspec.load_spec(path))
    assert plan.params == reference["params"]
    model = archspec.build(plan)
    assert sum(p.numel() for p in model.parameters()) == reference["params"]
    assert_params_match(plan, model)  # node by node
    assert_flops_match(plan, model, batch=1)


@pytest.mark.parametrize("path", ZOO, ids=lambda p: p.stem)
def test_reference_weights_give_the_reference_logits(path):
    reference = _reference(path.stem)
    model = archspec.create_model(path.stem).eval()
    weights = seeded_state_dict(reference["state_dict"], seed=reference["weights_seed"])
    layout = load_state(model, weights)
    assert layout is not None  # the reference's names are not archspec's: a family converted them
    shape = reference["input"]
    x = seeded_input(shape["batch"], shape["channels"], shape["height"], shape["width"], seed=shape["seed"])
    with torch.no_grad():
        logits = model(x)
    expected = torch.tensor(reference["logits"])
    error = ((logits - expected).abs().max() / expected.abs().max()).item()
    assert error <= 1e-4, f"relative error {error:.2e}"
