"""Loading weights: our own files and official SpectFormer-H checkpoints (block mixers under ``attn``)."""

from __future__ import annotations

import re

import pytest
import torch
from conftest import ROOT

import archspec
from archspec.checkpoint import CheckpointError, load_file, load_state
from archspec.families.spectformer import convert as from_official


def _official_keys_s() -> dict[str, tuple[int, ...]]:
    """The official SpectFormer-H-S state-dict layout, written out from its module structure."""
    keys: dict[str, tuple[int, ...]] = {}
    for i, cin in enumerate([3, 32, 32]):
        keys[f"patch_embed1.conv.{3 * i}.weight"] = (32, cin, 7, 7) if i == 0 else (32, 32, 3, 3)
        for name in ("weight", "bias", "running_mean", "running_var"):
            keys[f"patch_embed1.conv.{3 * i + 1}.{name}"] = (32,)
        keys[f"patch_embed1.conv.{3 * i + 1}.num_batches_tracked"] = ()
    keys |= {"patch_embed1.proj.weight": (64, 32, 3, 3), "patch_embed1.proj.bias": (64,)}
    keys |= {"patch_embed1.norm.weight": (64,), "patch_embed1.norm.bias": (64,)}
    dims, depths, ratios, grids = [64, 128, 320, 448], [3, 4, 6, 3], [8, 8, 4, 4], [56, 28]
    for s, (dim, depth, ratio) in enumerate(zip(dims, depths, ratios, strict=True), start=1):
        if s > 1:
            keys |= {f"patch_embed{s}.proj.weight": (dim, dims[s - 2], 3, 3), f"patch_embed{s}.proj.bias": (dim,)}
            keys |= {f"patch_embed{s}.norm.weight": (dim,), f"patch_embed{s}.norm.bias": (dim,)}
        hidden = dim * ratio
        for j in range(depth):
            b = f"block{s}.{j}"
            for n in ("norm1", "norm2"):
                keys |= {f"{b}.{n}.weight": (dim,), f"{b}.{n}.bias": (dim,)}
            if s <= 2:
                keys[f"{b}.attn.complex_weight"] = (grids[s - 1], grids[s - 1] // 2 + 1, dim, 2)
            else:
                for n, out in (("q", dim), ("kv", 2 * dim), ("proj", dim)):
                    keys |= {f"{b}.attn.{n}.weight": (out, dim), f"{b}.attn.{n}.bias": (out,)}
            keys |= {f"{b}.mlp.fc1.weight": (hidden, dim), f"{b}.mlp.fc1.bias": (hidden,)}
            keys |= {f"{b}.mlp.dwconv.dwconv.weight": (hidden, 1, 3, 3), f"{b}.mlp.dwconv.dwconv.bias": (hidden,)}
            keys |= {f"{b}.mlp.fc2.weight": (dim, hidden), f"{b}.mlp.fc2.bias": (dim,)}
        keys |= {f"norm{s}.weight": (dim,), f"norm{s}.bias": (dim,)}
    p = "post_network.0"
    keys |= {
        f"{p}.norm1.weight": (448,),
        f"{p}.norm1.bias": (448,),
        f"{p}.norm2.weight": (448,),
        f"{p}.norm2.bias": (448,),
    }
    for n, out in (("kv", 896), ("q", 448), ("proj", 448)):
        keys |= {f"{p}.attn.{n}.weight": (out, 448), f"{p}.attn.{n}.bias": (out,)}
    keys |= {f"{p}.mlp.fc1.weight": (1792, 448), f"{p}.mlp.fc1.bias": (1792,)}
    keys |= {f"{p}.mlp.fc2.weight": (448, 1792), f"{p}.mlp.fc2.bias": (448,)}
    for head in ("head", "aux_head"):
        keys |= {f"{head}.weight": (1000, 448), f"{head}.bias": (1000,)}
    return keys


@pytest.fixture(scope="module")
def model_s():
    return archspec.build(archspec.load_spec(ROOT / "specs" / "spectformer-h-s.yaml"))


def test_state_dict_equals_official_layout_but_for_the_mixer_name(model_s):
    ours = {key: tuple(value.shape) for key, value in model_s.state_dict().items()}
    official = _official_keys_s()
    assert {from_official({k: torch.empty(0)}).popitem()[0]: shape for k, shape in official.items()} == ours
    assert len(official) == len(ours) == 281


def test_load_official_checkpoint(model_s):
    donor = archspec.build(archspec.load_spec(ROOT / "specs" / "spectformer-h-s.yaml"), seed=1)
    official = {re.sub(r"^(block\d+\.\d+)\.m\.", r"\1.attn.", k): v for k, v in donor.state_dict().items()}
    assert "block1.0.attn.complex_weight" in official and "post_network.0.attn.q.weight" in official
    load_state(model_s, {"model": official})
    for key, value in donor.state_dict().items():
        assert torch.equal(model_s.state_dict()[key], value), key


def test_mismatches_are_named(model_s):
    state = dict(model_s.state_dict())
    state.pop("head.bias")
    state["head.weight"] = torch.zeros(10, 448)
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as info:
        load_state(model_s, state)
    assert str(info.value) == (
        "checkpoint does not fit the model (3 problems):\n"
        "  missing: head.bias (1000,)\n"
        "  unexpected: extra.weight\n"
        "  shape: head.weight is (10, 448) in the checkpoint, (1000, 448) in the model"
    )


def test_truncated_file(tmp_path, model_s):
    path = tmp_path / "w.pt"
    torch.save(model_s.state_dict(), path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError) as info:
        load_file(model_s, path)
    assert str(info.value).startswith(f"{path}: not a readable checkpoint (")


def _tiny_plan(*overrides: str):
    from conftest import tiny

    spec = archspec.validate(tiny())
    return archspec.plan(archspec.validate(_apply(spec.model_dump(mode="json"), overrides)))


def _apply(data: dict, overrides: tuple[str, ...]) -> dict:
    for override in overrides:
        key, value = override.split("=")
        *path, last = key.split(".")
        node = data
        for part in path:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[last] = int(value)
    return data


def test_a_checkpoint_loads_after_the_format_gains_an_optional_field(tmp_path, monkeypatch):
    """A new optional field at its default leaves the fingerprint alone, so old checkpoints still load."""
    from pydantic import Field

    from archspec import registry
    from archspec.checkpoint import save_file
    from archspec.components.mixer_attention import AttentionSpec

    plan = _tiny_plan()
    path = save_file(archspec.build(plan), plan, tmp_path / "w.pt")

    class GrownAttentionSpec(AttentionSpec):  # the same component, one release later
        gate: bool = Field(False, description="a new option, off by default")

    monkeypatch.setitem(registry._COMPONENTS["mixer"], "attention", GrownAttentionSpec)
    grown = _tiny_plan()
    assert type(grown.spec.stages[1].mixer[0]) is GrownAttentionSpec
    assert grown.fingerprint == plan.fingerprint
    load_file(archspec.build(grown), path, plan=grown)


def test_a_checkpoint_with_a_fingerprint_of_every_default_still_loads(tmp_path):
    """Checkpoints whose fingerprint hashed the full spec, defaults included, load when the spec is the same."""
    import hashlib
    import json

    from archspec.checkpoint import save_file
    from archspec.fingerprint import canonical

    plan = _tiny_plan()
    path = save_file(archspec.build(plan), plan, tmp_path / "w.pt")
    payload = torch.load(path, weights_only=True)
    full = json.dumps(canonical(plan.spec), sort_keys=True, separators=(",", ":"))
    payload["spec_fingerprint"] = hashlib.sha256(full.encode()).hexdigest()[:16]
    assert payload["spec_fingerprint"] != plan.fingerprint
    torch.save(payload, path)
    load_file(archspec.build(plan), path, plan=plan)


def test_a_spec_mismatch_names_only_what_differs(tmp_path):
    from archspec.checkpoint import save_file

    plan = _tiny_plan()
    path = save_file(archspec.build(plan), plan, tmp_path / "w.pt")
    deeper = _tiny_plan("stages.1.depth=3")
    with pytest.raises(CheckpointError) as info:
        load_file(archspec.build(deeper), path, plan=deeper)
    assert str(info.value).endswith("checkpoint → this spec:\n  stages[1].depth: 2 → 3")


def test_warm_start_copies_what_fits_and_names_the_rest():
    from archspec.checkpoint import warm_start

    parent = archspec.build(_tiny_plan(), seed=1)
    child = archspec.build(_tiny_plan("stages.1.depth=3", "stages.1.dim=24", "num_classes=7"), seed=2)
    report = warm_start(child, parent.state_dict())
    assert report.layout is None
    assert "block2.2.norm1.weight" in report.new and report.dropped == []
    assert "head.weight (5, 16) → (7, 24)" in report.reshaped
    assert "patch_embed1.proj.weight" in report.copied and "block1.0.m.complex_weight" in report.copied
    assert torch.equal(
        child.state_dict()["block1.0.m.complex_weight"], parent.state_dict()["block1.0.m.complex_weight"]
    )
    assert len(report.copied) + len(report.new) + len(report.reshaped) == len(child.state_dict())
    assert report.report().splitlines()[0] == f"copied {len(report.copied)} tensors"


def test_fine_tuning_reinitialises_only_the_classifier(tmp_path):
    parent = archspec.create_model("spectformer-h-s", overrides={"input.size": 64}, seed=1)
    path = tmp_path / "parent.pt"
    torch.save(parent.state_dict(), path)
    child = archspec.create_model(
        "spectformer-h-s", overrides={"input.size": 64}, pretrained=path, num_classes=10, seed=2
    )
    theirs, ours = parent.state_dict(), child.state_dict()
    assert ours["head.weight"].shape == (10, 448) and ours["aux_head.bias"].shape == (10,)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours if not k.startswith(("head.", "aux_head.")))


def test_safetensors_files_load(tmp_path, model_s):
    safetensors = pytest.importorskip("safetensors.torch")
    path = tmp_path / "w.safetensors"
    safetensors.save_file({k: v.contiguous() for k, v in model_s.state_dict().items()}, str(path))
    other = archspec.build(archspec.load_spec(ROOT / "specs" / "spectformer-h-s.yaml"), seed=5)
    load_file(other, path)
    assert all(torch.equal(other.state_dict()[k], v) for k, v in model_s.state_dict().items())


def test_components_registered_after_the_spec_module_are_accepted():
    """Registration works at any time: slots look types up when a spec is validated."""
    from typing import Literal

    from archspec import registry
    from archspec.plan import Node, Shape, Site
    from archspec.specbase import MixerSpec

    class LateMixer(MixerSpec):
        type: Literal["late"] = "late"

        def plan(self, tokens: Shape, site: Site) -> Node:
            return self.node(site, tokens, tokens, 0, 0)

    registry.register(LateMixer)
    try:
        from conftest import tiny

        spec = tiny()
        spec["stages"][0]["mixer"] = {"type": "late"}
        assert type(archspec.validate(spec).stages[0].mixer[0]) is LateMixer
    finally:
        del registry._COMPONENTS["mixer"]["late"]
