"""archspec list: every shipped spec once, with the parameters and FLOPs archspec.plan gives, and its file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

import archspec
from archspec.cli import main
from archspec.compose import SHIPPED_SPECS, shipped_specs


def _family(path: Path) -> str:
    folder = path.parent.relative_to(SHIPPED_SPECS).as_posix()
    return "spectformer" if folder == "." else folder


def _expected() -> list[dict[str, object]]:
    rows = []
    for path in shipped_specs():
        planned = archspec.plan(archspec.load_spec(path))
        rows.append({"name": path.stem, "family": _family(path), "params": planned.params, "flops": planned.flops})
    return rows


def test_json_lists_every_shipped_spec_once_with_its_plan(capsys):
    assert main(["list", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in listed] == [path.stem for path in shipped_specs()]
    assert sorted(row["name"] for row in listed) == archspec.list_specs()  # each name once
    assert len({row["name"] for row in listed}) == len(listed)
    assert [{k: row[k] for k in ("name", "family", "params", "flops")} for row in listed] == _expected()
    for row, path in zip(listed, shipped_specs(), strict=True):
        assert (Path.cwd() / row["path"]).resolve() == path.resolve()
    assert {row["family"] for row in listed} <= {"spectformer", "zoo", "variants", "digits"}


def test_table_rows(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "family", "params", "GFLOPs", "file"]
    assert set(lines[1]) == {"-", " "}
    body = lines[2:]
    assert len(body) == len(shipped_specs())
    by_name = {line.split()[0]: line.split() for line in body}
    spectformer = by_name["spectformer"]
    planned = archspec.plan(archspec.load_spec("spectformer"))
    assert spectformer[1:4] == ["spectformer", f"{planned.params:,}", f"{planned.flops / 1e9:.3f}"]
    assert spectformer[1:3] == ["spectformer", "14,183,334"]
    assert Path(spectformer[4]).resolve() == (SHIPPED_SPECS / "spectformer.yaml").resolve()
    assert by_name["resnet50"][1] == "zoo"
    for row in _expected():
        cells = by_name[str(row["name"])]
        assert cells[1:4] == [row["family"], f"{row['params']:,}", f"{int(str(row['flops'])) / 1e9:.3f}"]


def test_markdown(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["list", "--format", "md"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [cell.strip() for cell in lines[0].strip("|").split("|")] == ["name", "family", "params", "GFLOPs", "file"]
    assert lines[1].split("|")[3].endswith(":") and lines[1].split("|")[4].endswith(":")  # numbers right-aligned
    assert len(lines) == 2 + len(shipped_specs())
    names = [line.split("|")[1].strip() for line in lines[2:]]
    assert names == [path.stem for path in shipped_specs()]


def test_verbose_reports_the_planning_time(capsys):
    assert main(["list", "-v", "--format", "json"]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"planned {len(shipped_specs())} shipped specs in ") and err.endswith(" ms\n")


@pytest.mark.parametrize("format", ["table", "md", "json"])
def test_list_is_fast_and_imports_no_torch(format):
    code = (
        "import sys, time; from archspec.cli import main; start = time.perf_counter(); "
        f"status = main(['list', '--format', {format!r}, '-q']); "
        "print('torch' in sys.modules, status, time.perf_counter() - start, file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    torch_loaded, status, seconds = result.stderr.split()
    assert (torch_loaded, status) == ("False", "0")
    assert float(seconds) < 10  # about 0.4 s for 50 specs with a PlanCache on one core
