"""Loading weights: our own files and official SpectFormer-H checkpoints (block mixers under ``attn``)."""

from __future__ import annotations

import re

import pytest
import torch
from conftest import ROOT

import archspec
from archspec.checkpoint import CheckpointError, load_file, load_state
from archspec.families.spectformer import convert as from_official
from archspec.fingerprint import spec_fingerprint


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
    assert spec_fingerprint(grown.spec) == spec_fingerprint(plan.spec)
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
    assert payload["spec_fingerprint"] != spec_fingerprint(plan.spec)
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
    from archspec.nodes import Node, Shape, Site
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


# Refusals: what a checkpoint may not hold, and files that would not fit in memory.


def _tiny_model(device: str = "cpu"):
    return archspec.build(_tiny_plan(), device=device)


def _spec_file(tmp_path):
    import json

    from conftest import tiny

    path = tmp_path / "tiny.yaml"
    path.write_text(json.dumps(tiny()))  # JSON is YAML
    return path


def test_a_key_that_is_not_a_string_is_named(tmp_path):
    state = {**_tiny_model().state_dict(), 7: torch.zeros(1)}
    with pytest.raises(CheckpointError) as info:
        load_state(_tiny_model(), {"state_dict": state})
    assert (str(info.value), info.value.code) == (
        "the checkpoint's state_dict has the key 7 (int); its keys must be tensor names (strings)",
        "AS501",
    )
    path = tmp_path / "w.pt"
    torch.save({tuple(range(100)): torch.zeros(1)}, path)
    with pytest.raises(CheckpointError) as info:
        load_file(_tiny_model(), path)
    assert str(info.value) == (  # a file's name leads the message
        f"{path}: the checkpoint's state_dict has the key (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, "
        "16, 17, 18, 19, 20, 21, 2… (310 more characters) (tuple); its keys must be tensor names (strings)"
    )


def test_non_finite_weights_are_refused_unless_allowed():
    from archspec.checkpoint import warm_start

    state = dict(_tiny_model().state_dict())
    state["patch_embed1.proj.weight"] = state["patch_embed1.proj.weight"].clone()
    state["patch_embed1.proj.weight"][0, 0, 0, :2] = torch.tensor([float("nan"), float("inf")])
    state["head.bias"] = torch.full((5,), float("-inf"))
    expected = (
        "non-finite weights: 2 of the 384 values of patch_embed1.proj.weight are NaN or infinite, and 1 more "
        "tensor holds some; pass --allow-nonfinite (allow_nonfinite=True) to load it anyway"
    )
    for load in (load_state, warm_start):
        model = _tiny_model()
        before = model.state_dict()["head.bias"].clone()
        with pytest.raises(CheckpointError) as info:
            load(model, state)
        assert (str(info.value), info.value.code) == (expected, "AS503")
        assert torch.equal(model.state_dict()["head.bias"], before)  # nothing was loaded
        load(model, state, allow_nonfinite=True)
        assert model.state_dict()["head.bias"].isneginf().all()


def test_non_finite_weights_on_the_command_line(tmp_path, capsys):
    from archspec.cli import main

    state = dict(_tiny_model().state_dict())
    state["head.weight"] = torch.full_like(state["head.weight"], float("nan"))
    weights, out = tmp_path / "nan.pt", tmp_path / "out.pt"
    torch.save(state, weights)
    spec = str(_spec_file(tmp_path))
    assert main(["convert", spec, str(weights), "-o", str(out)]) == 1
    assert f"error: {weights}: non-finite weights: 80 of the 80 values of head.weight are NaN or infinite; pass " in (
        capsys.readouterr().err
    )
    assert not out.exists()
    assert main(["convert", spec, str(weights), "-o", str(out), "--allow-nonfinite"]) == 0
    assert main(["build", spec, "--no-tree", "--init-from", str(weights)]) == 1
    assert "values of head.weight are NaN or infinite; pass --allow-nonfinite" in capsys.readouterr().err
    assert main(["build", spec, "--no-tree", "--init-from", str(weights), "--allow-nonfinite"]) == 0


def test_a_dtype_that_would_lose_data_is_refused():
    from archspec.checkpoint import warm_start

    state = dict(_tiny_model().state_dict())
    shape = state["block1.0.m.complex_weight"].shape
    state["block1.0.m.complex_weight"] = torch.zeros(shape, dtype=torch.complex64)
    for load, title in (
        (load_state, "checkpoint does not fit the model"),
        (warm_start, "checkpoint tensors would lose data in the model"),
    ):
        with pytest.raises(CheckpointError) as info:
            load(_tiny_model(), state)
        assert (str(info.value), info.value.code) == (
            f"{title} (1 problems):\n"
            "  dtype: block1.0.m.complex_weight is complex64 in the checkpoint, float32 in the model "
            "(complex values do not fit floating-point ones)",
            "AS502",
        )
    norm = torch.nn.BatchNorm2d(2)
    with pytest.raises(CheckpointError) as info:
        load_state(norm, {**norm.state_dict(), "num_batches_tracked": torch.tensor(2.5)})
    assert str(info.value).endswith(
        "dtype: num_batches_tracked is float32 in the checkpoint, int64 in the model "
        "(floating-point values do not fit integer ones)"
    )


def test_another_precision_of_the_same_kind_loads():
    donor = archspec.build(_tiny_plan(), seed=3)
    half = {key: value.half() if value.is_floating_point() else value for key, value in donor.state_dict().items()}
    model = _tiny_model()
    load_state(model, half)
    assert model.state_dict()["head.weight"].dtype == torch.float32
    assert torch.equal(model.state_dict()["head.weight"], half["head.weight"].float())


def test_a_model_on_the_meta_device_neither_loads_nor_saves(tmp_path, capsys):
    from archspec.checkpoint import save_file, warm_start
    from archspec.cli import main

    meta = _tiny_model("meta")
    state = _tiny_model().state_dict()
    loading = (
        "the model is on the meta device (shapes, no data), so there is nothing to load the weights into; "
        "build it on cpu or cuda instead"
    )
    for load in (load_state, warm_start):
        with pytest.raises(CheckpointError) as info:
            load(meta, state)
        assert (str(info.value), info.value.code) == (loading, "AS503")
    with pytest.raises(CheckpointError) as info:
        load_file(meta, tmp_path / "not-read.pt")  # refused before the file is looked at
    assert str(info.value) == loading
    with pytest.raises(CheckpointError) as info:
        save_file(meta, _tiny_plan(), tmp_path / "w.pt")
    assert str(info.value) == (
        "the model is on the meta device (shapes, no data), so a checkpoint of it would hold no weights; "
        "build it on cpu or cuda instead"
    )
    assert list(tmp_path.iterdir()) == []
    spec = str(_spec_file(tmp_path))
    assert main(["build", spec, "--no-tree", "--device", "meta", "--save", str(tmp_path / "w.pt")]) == 1
    assert "a checkpoint of it would hold no weights; build it on cpu or cuda instead [AS503]" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "w.pt").exists()


def _zip_bomb(path, megabytes: int = 64):
    """A file shaped like a torch zip checkpoint whose data member is ``megabytes`` MiB of deflated zeros."""
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        with archive.open("archive/data/0", "w") as member:
            chunk = bytes(2**20)
            for _ in range(megabytes):
                member.write(chunk)
        archive.writestr("archive/version", b"3\n")
    return {info.filename: info for info in zipfile.ZipFile(path).infolist()}


@pytest.fixture
def no_torch_load(monkeypatch):
    """torch.load fails the test: a refused file must be refused before anything is inflated."""

    def refuse(*args, **kwargs):
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", refuse)


def test_a_zip_bomb_is_refused_for_its_ratio(tmp_path, no_torch_load):
    path = tmp_path / "bomb.pt"
    data = _zip_bomb(path)["archive/data/0"]
    assert path.stat().st_size < 2**20 and data.file_size == 64 * 2**20
    with pytest.raises(CheckpointError) as info:
        load_file(_tiny_model(), path)
    ratio = data.file_size / data.compress_size
    assert (str(info.value), info.value.code) == (
        f"{path}: member 'archive/data/0' inflates {ratio:,.0f}-fold, from {data.compress_size:,} bytes to "
        "64.00 MiB (67,108,864 bytes); tensor data does not compress like that (torch.save stores it "
        "uncompressed), so the file is refused as a possible zip bomb",
        "AS501",
    )


def test_a_zip_bomb_is_refused_for_its_size(tmp_path, monkeypatch, no_torch_load):
    from archspec import budget

    path = tmp_path / "bomb.pt"
    members = _zip_bomb(path)
    total = sum(info.file_size for info in members.values())
    monkeypatch.setattr(budget, "available_bytes", lambda: 32 * 2**20)
    with pytest.raises(CheckpointError) as info:
        load_file(_tiny_model(), path)
    assert (str(info.value), info.value.code) == (
        f"{path}: inflates from {path.stat().st_size:,} bytes on disk to 64.00 MiB ({total:,} bytes), "
        "more than the 32.00 MiB (33,554,432 bytes) of memory available",
        "AS501",
    )


def test_a_checkpoint_must_fit_in_the_memory_available(tmp_path, monkeypatch):
    from archspec import budget
    from archspec.checkpoint import read_file

    path = tmp_path / "w.pt"
    torch.save(_tiny_model().state_dict(), path)
    total = sum(info.file_size for info in __import__("zipfile").ZipFile(path).infolist())
    monkeypatch.setattr(budget, "available_bytes", lambda: 10_000)
    with pytest.raises(CheckpointError) as info:
        read_file(path)
    assert str(info.value) == (
        f"{path}: inflates from {path.stat().st_size:,} bytes on disk to {total:,} bytes, "
        "more than the 10,000 bytes of memory available"
    )
    assert read_file(path, max_bytes=total) is not None  # the bound is inclusive and can be given
    monkeypatch.setattr(budget, "available_bytes", lambda: None)
    assert budget.memory_limit() == budget.FALLBACK_BYTES
    load_file(_tiny_model(), path)


def test_a_deflated_checkpoint_of_real_weights_still_loads(tmp_path):
    """Deflate is not refused as such: trained weights barely compress, so the ratio stays far below the bound."""
    import zipfile

    donor = archspec.build(_tiny_plan(), seed=4)
    stored, deflated = tmp_path / "stored.pt", tmp_path / "deflated.pt"
    torch.save(donor.state_dict(), stored)
    with zipfile.ZipFile(stored) as source, zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info))
    model = _tiny_model()
    load_file(model, deflated)
    assert torch.equal(model.state_dict()["head.weight"], donor.state_dict()["head.weight"])


def _safetensors_file(path, header: dict, payload: bytes = b""):
    import json

    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + payload)
    return len(raw)


def test_a_safetensors_header_must_fit_its_file(tmp_path, no_torch_load):
    from archspec.checkpoint import read_file

    path = tmp_path / "w.safetensors"
    _safetensors_file(path, {"w": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 16]}}, bytes(16))
    with pytest.raises(CheckpointError) as info:
        read_file(path)
    assert (str(info.value), info.value.code) == (
        f"{path}: not a readable safetensors file (its header declares 3.81 MiB (4,000,000 bytes) of tensors, "
        "the file holds 16 bytes)",
        "AS501",
    )
    path.write_bytes((2**40).to_bytes(8, "little") + b"{}")
    with pytest.raises(CheckpointError) as info:
        read_file(path)
    assert str(info.value) == (
        f"{path}: not a readable safetensors file (a header of 1,099,511,627,776 bytes declared in a file of 10 bytes)"
    )
    path.write_bytes(b"\x05")
    with pytest.raises(CheckpointError) as info:
        read_file(path)
    assert (
        str(info.value) == f"{path}: not a readable safetensors file (a header of 5 bytes declared in a file of 1 byte)"
    )
    _safetensors_file(path, {"w": {"dtype": "F32", "shape": "many"}})
    with pytest.raises(CheckpointError) as info:
        read_file(path)
    assert str(info.value) == f"{path}: not a readable safetensors file (tensor 'w' has the shape 'many', not a list)"


def test_safetensors_tensors_must_fit_in_the_memory_available(tmp_path):
    from archspec.checkpoint import read_file

    path = tmp_path / "w.safetensors"
    _safetensors_file(path, {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, bytes(16))
    with pytest.raises(CheckpointError) as info:
        read_file(path, max_bytes=15)
    assert str(info.value) == f"{path}: declares tensors of 16 bytes, more than the 15 bytes of memory available"
    pytest.importorskip("safetensors")
    assert torch.equal(read_file(path, max_bytes=16)["w"], torch.zeros(2, 2))
