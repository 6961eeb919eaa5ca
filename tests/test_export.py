"""Export to ONNX (checked with onnxruntime) and to torch.export programs: names, a dynamic batch, and a dynamic
height and width (`--dynamic hw`); TorchScript."""

from __future__ import annotations

import onnx
import pytest
import torch
from conftest import ROOT

import archspec
from archspec import export as export_module
from archspec.cli import main

SPEC = str(ROOT / "specs" / "spectformer.yaml")
SMALL = ["--set", "input.size=64"]  # the same model at 64×64 exports in a fraction of the time


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_export_matches_eager(tmp_path, fmt, capsys):
    out = tmp_path / f"model.{fmt}"
    assert main(["export", SPEC, *SMALL, "--format", fmt, "-o", str(out)]) == 0
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith(f"wrote {out}; largest difference from eager at batch 1 and 3: ")
    assert float(err.rsplit(" ", 1)[1]) <= 1e-4
    assert [p.name for p in tmp_path.iterdir()] == [out.name]
    if fmt == "onnx":
        names = {init.name for init in onnx.load(str(out)).graph.initializer}
        assert {f"block1.{j}.m.complex_weight" for j in range(3)} <= names  # the filter keeps its name
    else:
        program = torch.export.load(str(out)).module()
        plan = archspec.plan(archspec.load_spec(SPEC, ["input.size=64"]))
        assert tuple(program(torch.randn(5, 3, 64, 64)).shape) == (5, *plan.out_shape.dims)


def test_missing_extra_says_what_to_install():
    with pytest.raises(export_module.ExportError) as info:
        export_module._need("onnx", "a_package_that_is_not_installed")
    assert str(info.value) == (
        "ONNX export needs a_package_that_is_not_installed: pip install onnx onnxscript onnxruntime "
        "(or pip install -e '.[export]' in a checkout)"
    )


def test_export_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "model.pt2"
    out.write_bytes(b"keep me")
    assert main(["export", SPEC, *SMALL, "--format", "pt2", "-o", str(out)]) == 2
    assert out.read_bytes() == b"keep me"


# Tiny specs: a classifier and a backbone whose height and width can be dynamic (no spectral filter
# and no position embeddings), and one with a spectral filter. The patch stem and the conv
# downsamples make a total stride of 8 (classifier) and 16 (backbone).
CLASSIFIER = """\
name: TinyConv
input: {size: 32}
num_classes: 5
stem: {type: patch, patch: 4}
stages:
  - {dim: 8, depth: 1, mixer: {type: pool}, ffn: {type: mlp, ratio: 2}}
  - {dim: 16, depth: 1, downsample: {type: conv, kernel: 3, stride: 2}, mixer: {type: attention, heads: 2}}
head: {type: pool}
"""
BACKBONE = """\
name: TinyBackbone
input: {size: 32}
stem: {type: patch, patch: 4}
stages:
  - {dim: 8, depth: 1, mixer: {type: pool}}
  - {dim: 16, depth: 1, downsample: {type: conv, kernel: 3, stride: 2}, mixer: {type: pool}}
  - {dim: 24, depth: 1, downsample: {type: conv, kernel: 3, stride: 2}, mixer: {type: attention, heads: 2}}
features: {out_indices: [0, 2]}
"""
SPECTRAL = """\
name: TinySpectral
input: {size: 32}
stem: {type: patch, patch: 4}
stages:
  - {dim: 8, depth: 1, mixer: {type: spectral}}
  - {dim: 16, depth: 1, downsample: {type: conv, kernel: 3, stride: 2}, mixer: {type: pool}}
head: {type: pool}
"""


def _spec(tmp_path, text, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _eager(path):
    """The model ``archspec export`` builds for this spec (seed 0), in eval mode."""
    return archspec.create_model(str(path), seed=0).eval()


def _maps(value):
    return list(value.values()) if isinstance(value, dict) else list(value) if isinstance(value, list) else [value]


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_dynamic_hw_export_runs_at_other_sizes(tmp_path, fmt, capsys):
    spec = _spec(tmp_path, CLASSIFIER)
    out = tmp_path / f"model.{fmt}"
    assert main(["export", str(spec), "--format", fmt, "--dynamic", "hw", "-o", str(out)]) == 0
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith(f"wrote {out}; largest difference from eager at batch 1 and 3, and at 1×3×48×32: ")
    model = _eager(spec)
    sizes = [(2, 32, 32), (1, 64, 48), (1, 16, 24)]  # the built size, and others: multiples of the stride 8
    if fmt == "onnx":
        import onnxruntime

        graph = onnx.load(str(out)).graph
        assert [(i.name, _dims(i)) for i in graph.input] == [("image", ["batch", 3, "8*grid_height", "8*grid_width"])]
        assert [(o.name, _dims(o)) for o in graph.output] == [("logits", ["batch", 5])]
        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        run = lambda x: torch.from_numpy(session.run(None, {"image": x.numpy()})[0])  # noqa: E731
    else:
        program = torch.export.load(str(out))
        assert program.graph_signature.user_inputs == ("image",)
        assert list(program.state_dict) == list(model.state_dict())  # the model's names, no prefix
        run = program.module()
    for batch, height, width in sizes:
        x = torch.randn(batch, 3, height, width)
        with torch.no_grad():
            expected = model(x)
        assert expected.shape == (batch, 5)
        assert (run(x) - expected).abs().max().item() <= 1e-4


def test_a_backbone_names_its_outputs_after_its_maps(tmp_path, capsys):
    import onnxruntime

    spec = _spec(tmp_path, BACKBONE)
    out = tmp_path / "backbone.onnx"
    assert main(["export", str(spec), "--dynamic", "hw", "-o", str(out)]) == 0
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert [o.name for o in session.get_outputs()] == ["stage1", "stage3"]  # out_indices 0 and 2, 1-based
    model = _eager(spec)
    for size in (32, 64):
        x = torch.randn(1, 3, size, size)
        with torch.no_grad():
            expected = _maps(model(x))
        results = session.run(None, {"image": x.numpy()})
        assert [r.shape for r in results] == [tuple(e.shape) for e in expected]
        assert max((torch.from_numpy(r) - e).abs().max().item() for r, e in zip(results, expected, strict=True)) <= 1e-4


def test_output_names():
    assert export_module.output_names(torch.zeros(1)) == ["logits"]
    assert export_module.output_names({"stage2": torch.zeros(1), "stage4": torch.zeros(1)}) == ["stage2", "stage4"]


def test_compare_reads_dicts_in_order():
    one, two = torch.zeros(2), torch.ones(2)
    assert export_module._compare({"stage1": one, "stage2": two}, [one, two + 2**-16], "it") == 2**-16
    with pytest.raises(export_module.ExportError) as info:
        export_module._compare({"stage1": one, "stage2": two}, {"stage2": two, "stage1": one}, "the program")
    assert str(info.value) == (
        "the program returns the maps ['stage2', 'stage1'] where the eager model returns ['stage1', 'stage2']"
    )


def test_dynamic_hw_refuses_strict_resizing(tmp_path, capsys):
    spec = _spec(tmp_path, SPECTRAL)
    out = tmp_path / "model.pt2"
    args = ["export", str(spec), "--format", "pt2", "--dynamic", "hw", "-o", str(out)]
    assert main([*args, "--set", "stages.0.mixer.resize=strict"]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        "error: --dynamic hw: stages[0].mixer (spectral) has resize: strict, so TinySpectral takes only 32×32 "
        "images; export with --dynamic batch [AS802]"
    )
    assert not out.exists()


def test_dynamic_hw_exports_a_spectral_filter_to_pt2(tmp_path, capsys):
    # The filter resizes itself on another grid; the comparison with its built grid leaves no guard
    # behind, so the program runs at other sizes and agrees with the eager model there.
    spec = _spec(tmp_path, SPECTRAL)
    out = tmp_path / "model.pt2"
    assert main(["export", str(spec), "--format", "pt2", "--dynamic", "hw", "-o", str(out)]) == 0
    program = torch.export.load(str(out)).module()
    eager = _eager(spec)
    for size in ((16, 16), (48, 32)):
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            torch.testing.assert_close(program(x), eager(x), atol=1e-5, rtol=1e-4)


def test_dynamic_hw_refuses_a_spectral_filter_in_onnx(tmp_path, capsys):
    spec = _spec(tmp_path, SPECTRAL)
    out = tmp_path / "model.onnx"
    assert main(["export", str(spec), "--format", "onnx", "--dynamic", "hw", "-o", str(out)]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        "error: --dynamic hw: stages[0].mixer (spectral) runs a 2-D FFT, and onnxruntime's DFT fails on one whose "
        "width is dynamic (a shape mismatch when it reuses a buffer); export to ONNX with --dynamic batch, or use "
        "--format pt2 [AS802]"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            "input.size=8",
            "--dynamic hw: the last stage's grid is 1×1 at the built size; torch.export needs at least 2×2, so set "
            "input.size to at least 16×16",
        ),
        (
            "input.size=36",
            "--dynamic hw: the 36×36 input does not divide evenly into the stage grids (9×9, 5×5); set input.size "
            "to a multiple of the total stride",
        ),
    ],
    ids=["too-small", "uneven"],
)
def test_dynamic_hw_needs_whole_grids(tmp_path, change, message):
    plan = archspec.plan(archspec.load_spec(_spec(tmp_path, CLASSIFIER), [change]))
    model = archspec.build(plan)
    with pytest.raises(export_module.ExportError) as info:
        export_module.export(model, plan, tmp_path / "model.pt2", "pt2", dynamic="hw")
    assert str(info.value) == message


def test_torchscript_is_not_supported_but_tracing_is(tmp_path):
    # README, "Export": torch.jit.script fails on archspec's modules; torch.jit.trace gives the eager
    # outputs at the traced image size, at any batch size.
    model = _eager(_spec(tmp_path, CLASSIFIER))
    with (
        pytest.warns(DeprecationWarning, match="torch.jit.script` is deprecated"),
        pytest.raises((RuntimeError, torch.jit.frontend.FrontendError)),
    ):
        torch.jit.script(model)
    with pytest.warns(Warning) as warned:  # deprecation, for trace and trace_method
        traced = torch.jit.trace(model, torch.randn(2, 3, 32, 32))
    assert "`torch.jit.trace` is deprecated. Please switch to `torch.compile` or `torch.export`." in {
        str(warning.message) for warning in warned
    }
    for batch in (1, 3):
        x = torch.randn(batch, 3, 32, 32)
        with torch.no_grad():
            assert (traced(x) - model(x)).abs().max().item() <= 1e-6
