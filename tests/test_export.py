"""Export to ONNX (checked with onnxruntime) and to torch.export programs, with a dynamic batch."""

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
        "ONNX export needs a_package_that_is_not_installed: pip install 'archspec[export]' "
        "(onnx, onnxscript, onnxruntime)"
    )


def test_export_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "model.pt2"
    out.write_bytes(b"keep me")
    assert main(["export", SPEC, *SMALL, "--format", "pt2", "-o", str(out)]) == 2
    assert out.read_bytes() == b"keep me"
