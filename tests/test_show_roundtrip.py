"""``archspec show`` prints a spec that validates and plans to the same model, for every shipped spec."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import archspec
from archspec.cli import main
from archspec.compose import shipped_specs
from archspec.fingerprint import spec_fingerprint

SHIPPED = shipped_specs()


def _show(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["show", str(path)]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_show_validates_and_plans_the_same_model(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = archspec.load_spec(path)
    before = archspec.plan(original)
    shown = tmp_path / f"{path.stem}.yaml"
    shown.write_text(_show(path, capsys))

    assert main(["validate", str(shown)]) == 0, capsys.readouterr().err
    again = archspec.load_spec(shown)
    after = archspec.plan(again)
    assert after.params == before.params
    assert after.flops == before.flops
    assert after.out_shape == before.out_shape
    assert spec_fingerprint(again.spec) == spec_fingerprint(original.spec)
    assert _show(shown, capsys) == shown.read_text()  # printing the printed spec changes nothing


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenetv2_100"])
def test_show_leaves_out_the_ffn_of_blocks_without_one(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    stages = yaml.safe_load(_show(Path(name), capsys))["stages"]
    assert all("ffn" not in stage for stage in stages)


def test_show_keeps_the_ffn_of_blocks_with_one(capsys: pytest.CaptureFixture[str]) -> None:
    stages = yaml.safe_load(_show(Path("spectformer-h-s"), capsys))["stages"]
    assert all("type" in stage["ffn"] for stage in stages)
