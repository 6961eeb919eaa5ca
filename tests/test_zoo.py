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
from archspec.fingerprint import spec_fingerprint
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


def _reference_file(tmp_path, name: str, suffix: str = ".pth"):
    reference = _reference(name)
    weights = seeded_state_dict(reference["state_dict"], seed=reference["weights_seed"])
    path = tmp_path / f"{name}{suffix}"
    if suffix == ".safetensors":
        safetensors = pytest.importorskip("safetensors.torch")
        safetensors.save_file({k: v.contiguous() for k, v in weights.items()}, str(path))
    else:
        torch.save({"state_dict": weights}, path)
    return path, weights


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_create_model_loads_the_reference_file(tmp_path, suffix):
    path, weights = _reference_file(tmp_path, "resnet18", suffix)
    model = archspec.create_model("resnet18", pretrained=path)
    assert torch.equal(model.state_dict()["patch_embed1.conv.0.weight"], weights["conv1.weight"])
    assert torch.equal(model.state_dict()["head.weight"], weights["fc.weight"])


def test_convert_writes_an_archspec_checkpoint(tmp_path, capsys):
    from archspec.cli import main

    path, weights = _reference_file(tmp_path, "convnext_atto")
    out = tmp_path / "convnext_atto.pt"
    assert main(["convert", "convnext_atto", str(path), "-o", str(out)]) == 0
    assert capsys.readouterr().err.startswith(f"ok: read {path} as the timm-convnext layout; wrote {out}")
    saved = torch.load(out, weights_only=True)
    plan = archspec.plan(archspec.load_spec("convnext_atto"))
    assert saved["spec_fingerprint"] == spec_fingerprint(plan.spec)
    assert torch.equal(saved["state_dict"]["block1.0.m.conv.weight"], weights["stages.0.blocks.0.conv_dw.weight"])
    assert main(["build", "convnext_atto", "--weights", str(out), "--no-tree"]) == 0
    assert f"loaded weights from {out}\n" in capsys.readouterr().err
    assert main(["build", "convnext_atto", "--weights", str(path), "--no-tree"]) == 0  # the reference's own file
    assert f"loaded weights from {path} (converted from the timm-convnext layout)\n" in capsys.readouterr().err
    assert main(["convert", "convnext_atto", str(path), "-o", str(out)]) == 2  # no silent overwrite
    assert main(["convert", "convnext_atto", str(path), "-o", str(out), "--layout", "timm-vitt"]) == 2
    assert "--layout timm-vitt: unknown checkpoint layout (known: " in capsys.readouterr().err


def test_a_wrong_layout_is_refused_with_every_problem_named(tmp_path):
    from archspec.checkpoint import CheckpointError, load_state

    _, weights = _reference_file(tmp_path, "resnet18")
    with pytest.raises(CheckpointError) as info:
        load_state(archspec.create_model("resnet50"), weights)
    assert str(info.value).startswith("checkpoint does not fit the model (read as the timm-resnet layout) (")


def test_every_layout_recognises_only_its_own_references():
    from archspec.families import layouts

    for path in REFERENCES:
        keys = [key for key, _ in json.loads(path.read_text())["state_dict"]]
        claimed = [layout.name for layout in layouts() if layout.detect(keys)]
        assert len(claimed) == 1, (path.stem, claimed)
