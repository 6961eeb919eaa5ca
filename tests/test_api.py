"""The Python API: create_model, list_specs, features, other input sizes, classifier reset."""

from __future__ import annotations

import pytest
import torch
from conftest import ROOT

import archspec
from archspec.checkpoint import save_file

SIZES = [(224, 224), (192, 192), (256, 256), (384, 384), (320, 256)]


def test_list_specs():
    """Every shipped spec by name: the SpectFormers, the zoo, the variants and the digits specs; no two share one."""
    folders = [ROOT / "specs", ROOT / "specs" / "zoo", ROOT / "specs" / "variants", ROOT / "specs" / "digits"]
    assert archspec.list_specs() == sorted(path.stem for folder in folders for path in folder.glob("*.yaml"))
    assert len(set(archspec.list_specs())) == len(archspec.list_specs()) == 50
    assert {"spectformer", "spectformer-h-s", "resnet50", "gfnet-h-ti"} <= set(archspec.list_specs())


def test_create_model_with_overrides_and_pretrained(tmp_path):
    model = archspec.create_model("spectformer-h-s", num_classes=10, overrides={"stages.2.depth": 2})
    plan = archspec.plan(archspec.load_spec(ROOT / "specs" / "spectformer-h-s.yaml",
                                            ["stages.2.depth=2", "num_classes=10"]))  # fmt: skip
    assert sum(p.numel() for p in model.parameters()) == plan.params
    save_file(model, plan, tmp_path / "w.pt")
    again = archspec.create_model("spectformer-h-s", num_classes=10, overrides=["stages.2.depth=2"],
                                  pretrained=tmp_path / "w.pt", seed=5)  # fmt: skip
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    with pytest.raises(archspec.ArchspecError) as info:
        archspec.create_model("spectformer-h-x")
    assert str(info.value) == (
        "'spectformer-h-x' is neither a spec file nor a shipped spec; "
        "did you mean spectformer-h-s, spectformer-h-l, spectformer-h-b?"
    )
    with pytest.raises(archspec.ArchspecError) as info:
        archspec.create_model("zzzz")
    assert str(info.value) == "'zzzz' is neither a spec file nor a shipped spec; list_specs() gives the shipped names"


@pytest.fixture(scope="module")
def h_s():
    return archspec.create_model("spectformer-h-s").eval()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_any_input_size(h_s, size):
    with torch.no_grad():
        assert tuple(h_s(torch.randn(1, 3, *size)).shape) == (1, 1000)


def test_strict_filters_refuse_other_sizes():
    model = archspec.create_model("spectformer", overrides={"stages.0.mixer.resize": "strict"}).eval()
    with pytest.raises(ValueError) as info, torch.no_grad():
        model(torch.randn(1, 3, 256, 256))
    assert str(info.value) == ("SpectralGatingNetwork was built for a 56×56 token grid, got 64×64 (resize='strict')")


def test_resized_filter_is_the_built_filter_at_the_built_size(h_s):
    mixer = h_s.block1[0].m
    assert torch.equal(mixer._filter(56, 56), mixer.complex_weight)
    resized = mixer._filter(64, 64)
    assert tuple(resized.shape) == (64, 33, 64, 2)
    # Corners are kept exactly (align_corners=True).
    torch.testing.assert_close(resized[0, 0], mixer.complex_weight[0, 0])
    torch.testing.assert_close(resized[-1, -1], mixer.complex_weight[-1, -1])


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_features_match_the_plan(size):
    features = archspec.create_model("spectformer-h-s", features_only=True).eval()
    planned = archspec.plan(archspec.load_spec(ROOT / "specs" / "spectformer-h-s.yaml", [f"input.size={list(size)}"]))
    with torch.no_grad():
        maps = features(torch.randn(2, 3, *size))
    assert list(maps) == ["stage1", "stage2", "stage3", "stage4"]
    assert [tuple(m.shape) for m in maps.values()] == [(2, s.dim, *s.grid) for s in planned.stages]
    assert features.feature_info == [
        {"num_chs": 64, "reduction": 4, "module": "stage1", "stage": 0},
        {"num_chs": 128, "reduction": 8, "module": "stage2", "stage": 1},
        {"num_chs": 320, "reduction": 16, "module": "stage3", "stage": 2},
        {"num_chs": 448, "reduction": 32, "module": "stage4", "stage": 3},
    ]
    assert features.feature_info.channels() == features.out_channels == [64, 128, 320, 448]
    assert features.feature_info.reduction() == [4, 8, 16, 32]
    assert features.feature_info.module_name(1) == "stage2"
    assert [name for name, _ in features.named_children()] == ["stage1", "stage2", "stage3", "stage4"]
    assert not hasattr(features, "head")


def test_out_indices():
    features = archspec.create_model("spectformer", features_only=True, out_indices=(1, 3)).eval()
    with torch.no_grad():
        maps = features(torch.randn(1, 3, 224, 224))
    assert {name: tuple(m.shape) for name, m in maps.items()} == {"stage2": (1, 128, 28, 28), "stage4": (1, 448, 7, 7)}


def test_reset_classifier_and_no_weight_decay(h_s):
    model = archspec.create_model("spectformer-h-s")
    # 272 parameter tensors, of which 89 are weight matrices or conv kernels (4 stem convs, 3 downsample
    # convs, 75 in blocks, 5 in the class block, head and aux head); the other 183 are biases, norm
    # weights and the 7 spectral filters.
    assert len(list(model.parameters())) == 272
    decay_free = model.no_weight_decay()
    assert len(decay_free) == 183
    filters = {f"block{stage}.{j}.m.complex_weight" for stage, depth in ((1, 3), (2, 4)) for j in range(depth)}
    assert {n for n in decay_free if n.endswith("complex_weight")} == filters
    model.reset_classifier(5)
    with torch.no_grad():
        assert tuple(model.eval()(torch.randn(1, 3, 224, 224)).shape) == (1, 5)
        model.reset_classifier(0)
        assert tuple(model(torch.randn(1, 3, 224, 224)).shape) == (1, 448)
        assert model.aux_head is None
        model.reset_classifier(7)
        assert tuple(model(torch.randn(1, 3, 224, 224)).shape) == (1, 7)
        assert model.aux_head is not None and model.aux_head.out_features == 7  # token labelling is back


def test_a_spec_can_declare_itself_a_backbone(tmp_path, capsys):
    from archspec.cli import main

    spec = tmp_path / "backbone.yaml"
    spec.write_text("extends: spectformer-h-s\nfeatures: {out_indices: [1, 3]}\n")
    backbone = archspec.create_model(spec)
    assert backbone.feature_info == [
        {"num_chs": 128, "reduction": 8, "module": "stage2", "stage": 1},
        {"num_chs": 448, "reduction": 32, "module": "stage4", "stage": 3},
    ]
    assert type(archspec.create_model(spec, features_only=False)).__name__ == "ClassAttentionModel"
    assert main(["build", str(spec), "--no-tree", "--batch", "2"]) == 0
    assert "forward 2×3×224×224 → 2×128×28×28, 2×448×7×7 in " in capsys.readouterr().err
    spec.write_text("extends: spectformer-h-s\nfeatures: {out_indices: [1, 4]}\n")
    with pytest.raises(archspec.SpecError) as info:
        archspec.plan(archspec.load_spec(spec))
    assert info.value.lines() == [
        f"{spec}:2:29: features.out_indices[1]: stage index 4 does not exist (the model has stages 0–3)"
    ]


def test_version_and_public_names(capsys):
    import tomllib

    from archspec.cli import main

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert archspec.__version__ == declared
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"archspec {declared}\n"
    assert dir(archspec) == sorted([*archspec.__all__, "__version__"])
    assert not {"Any", "importlib", "annotations", "TYPE_CHECKING"} & set(dir(archspec))
