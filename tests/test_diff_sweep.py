"""diff and sweep: exact tables for known questions."""

from __future__ import annotations

import json
import math

from conftest import ROOT

import archspec
from archspec.cli import main
from archspec.diff import diff_plans, format_diff
from archspec.sweep import combinations, split_values

SPEC = str(ROOT / "specs" / "spectformer.yaml")


def _plan(*overrides: str):
    return archspec.plan(archspec.load_spec(SPEC, overrides))


def test_swapping_stage_2_to_attention():
    diff = diff_plans(_plan(), _plan("stages.1.mixer.type=attention"))
    change = "blocks 0–3 mixer: spectral(conv_in=3, conv_out=3) → attention(heads=1)"
    assert [(c.part, c.what, c.params, c.flops) for c in diff.changes] == [
        ("stage 2", [change], -1_346_560, -201_107_456)
    ]
    # Per block: filter 28·15·128·2 + two 3×3 convs (128·128·9 + 128) − attention (4·128² + 4·128).
    assert -1_346_560 == 4 * (4 * 128 * 128 + 4 * 128 - (28 * 15 * 128 * 2 + 2 * (128 * 128 * 9 + 128)))
    # FLOPs: attention (q/kv/proj linears + two 784×784 products) − (two convs + two FFTs + complex product).
    fft = round(28 * 2.5 * 28 * math.log2(28) + 15 * 5 * 28 * math.log2(28))
    spectral = 2 * (2 * 784 * 128 * 128 * 9) + 2 * 128 * fft + 6 * 28 * 15 * 128
    assert 4 * (2 * 784 * 128 * 512 + 4 * 784 * 784 * 128 - spectral) == -201_107_456
    assert diff.params == -1_346_560


def test_deltas_add_up_to_the_totals():
    a, b = _plan(), _plan("stages.2.depth=8", "stem.type=patch", "num_classes=10", "stages.3.dim=512",
                          "stages.3.mixer.heads=16", "head.heads=16")  # fmt: skip
    diff = diff_plans(a, b)
    assert sum(c.params for c in diff.changes) == b.params - a.params
    assert sum(c.flops for c in diff.changes) == b.flops - a.flops
    assert [c.part for c in diff.changes] == ["stage 1", "stage 2", "stage 3", "stage 4", "head"]
    data = json.loads(format_diff(diff, "a", "b", "json"))
    assert data["delta"] == {"params": b.params - a.params, "flops": b.flops - a.flops}


def test_identical_specs():
    text = format_diff(diff_plans(_plan(), _plan()), "A", "B")
    assert text.splitlines()[-1] == "no structural differences"


def test_grid_values():
    assert split_values("[256, 320],224") == ["[256, 320]", "224"]
    assert combinations(["a=1,2", "b=x,y"]) == [["a=1", "b=x"], ["a=1", "b=y"], ["a=2", "b=x"], ["a=2", "b=y"]]


def test_sweep_table(capsys):
    grid = ["--grid", "stages.2.depth=4,6,8", "--grid", "stages.1.mixer.type=spectral,attention"]
    assert main(["sweep", SPEC, *grid]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "| overrides | params | GFLOPs | activations (MiB) | status |",
        "|---|---:|---:|---:|---|",
        "| stages.2.depth=4 stages.1.mixer.type=spectral | 12,941,734 | 6.333 | 28.1 | ok |",
        "| stages.2.depth=4 stages.1.mixer.type=attention | 11,595,174 | 6.132 | 28.1 | ok |",
        "| stages.2.depth=6 stages.1.mixer.type=spectral | 14,183,334 | 6.915 | 30.5 | ok |",
        "| stages.2.depth=6 stages.1.mixer.type=attention | 12,836,774 | 6.714 | 30.5 | ok |",
        "| stages.2.depth=8 stages.1.mixer.type=spectral | 15,424,934 | 7.498 | 32.9 | ok |",
        "| stages.2.depth=8 stages.1.mixer.type=attention | 14,078,374 | 7.296 | 32.9 | ok |",
    ]


def test_invalid_rows_do_not_stop_the_sweep(capsys):
    assert main(["sweep", SPEC, "--grid", "stages.2.mixer.heads=3,4", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "overrides,params,GFLOPs,activations (MiB),status"
    assert lines[1] == (
        "stages.2.mixer.heads=3,,,,invalid: --set stages.2.mixer.heads=3: stages[2].mixer.heads: "
        "3 heads do not divide the stage's dim 320"
    )
    assert lines[2] == "stages.2.mixer.heads=4,14183334,6.915,30.5,ok"  # plain numbers, no thousands separators


def test_sweep_measure_builds_and_times(capsys):
    assert main(["sweep", SPEC, "--grid", "num_classes=3,4", "--measure", "--repeats", "1", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert all(r["latency_ms"] > 0 for r in rows)
    assert [r["params"] for r in rows] == [14_183_334 - 3 * 449, 14_183_334 - 2 * 449]
