"""A spec with ``features:`` is a backbone on the command line too: summary, build, bench, export, sweep."""

from __future__ import annotations

import json
import re
import textwrap

import pytest
import torch

import archspec
from archspec import bench
from archspec.cli import main
from archspec.models import declared_cost
from archspec.sweep import run_sweep

BACKBONE = textwrap.dedent(
    """\
    name: TinyBackbone
    input: {size: 32}
    stages:
      - {dim: 8, depth: 1, mixer: {type: spectral}}
      - {dim: 16, depth: 1, mixer: {type: attention, heads: 2}}
      - {dim: 24, depth: 1, mixer: {type: attention, heads: 2}}
    features: {out_indices: [0, 1]}
    """
)


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "backbone.yaml"
    path.write_text(BACKBONE)
    return path


def test_the_declared_cost_leaves_out_the_head_and_the_stages_after_the_last_map(spec):
    plan = archspec.plan(archspec.load_spec(spec))
    params, flops = declared_cost(plan)
    assert params == plan.params - plan.head.params
    assert flops == plan.stages[0].flops + plan.stages[1].flops


def test_summary_says_what_the_backbone_returns(spec, capsys):
    plan = archspec.plan(archspec.load_spec(spec))
    params, flops = declared_cost(plan)
    assert main(["summary", str(spec)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2] == (
        f"backbone: returns 8×8×8 (stage 1), 16×4×4 (stage 2); {params:,} params without the head, "
        f"{flops / 1e9:.3f} GFLOPs per sample"
    )
    assert main(["summary", str(spec), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["backbone"] == {
        "out_indices": [0, 1],
        "maps": [[8, 8, 8], [16, 4, 4]],
        "params": params,
        "flops": flops,
    }


def test_a_classifier_has_no_backbone_line(capsys):
    assert main(["summary", "spectformer"]) == 0
    assert "backbone:" not in capsys.readouterr().out


def test_build_runs_the_backbone_and_checks_its_maps(spec, capsys):
    plan = archspec.plan(archspec.load_spec(spec))
    assert main(["build", str(spec), "--batch", "2"]) == 0
    captured = capsys.readouterr()
    tree = captured.out.split("\n\n")[0]
    assert tree.startswith("TinyBackbone(\n  (stage1): Stage(\n    (patch_embed): Stem(")
    assert "(stage3)" not in tree and "(head)" not in tree  # out_indices [0, 1]: stages 1 and 2 only
    assert re.fullmatch(
        rf"ok: built TinyBackbone as a backbone \({declared_cost(plan)[0]:,} params; the head's "
        rf"{plan.head.params:,} unused\) on cpu as float32 in \d+ ms; forward 2×3×32×32 → 2×8×8×8, 2×16×4×4 in "
        r"\d+ ms",
        captured.err.splitlines()[-1],
    )


def test_build_save_keeps_the_whole_model(spec, tmp_path, capsys):
    out = tmp_path / "w.pt"
    assert main(["build", str(spec), "--no-tree", "--save", str(out)]) == 0
    saved = torch.load(out, weights_only=True)
    assert "head.weight" in saved["state_dict"]  # create_model and build --weights load it as saved
    model = archspec.create_model(str(spec), pretrained=out)
    maps = model(torch.randn(1, 3, 32, 32))
    assert [tuple(m.shape) for m in maps.values()] == [(1, 8, 8, 8), (1, 16, 4, 4)]


def test_export_writes_the_backbone(spec, tmp_path, capsys):
    out = tmp_path / "backbone.pt2"
    assert main(["export", str(spec), "--format", "pt2", "-o", str(out)]) == 0
    program = torch.export.load(str(out)).module()
    maps = program(torch.randn(3, 3, 32, 32))
    assert [tuple(m.shape) for m in maps.values()] == [(3, 8, 8, 8), (3, 16, 4, 4)]


def test_bench_and_sweep_time_the_backbone(spec):
    plan = archspec.plan(archspec.load_spec(spec))
    result = bench.run(plan, "tiny", 2, warmup=1, repeats=2)
    assert result.gflops_per_s == pytest.approx(declared_cost(plan)[1] * 2 / (result.median_ms / 1e3) / 1e9)
    rows = run_sweep(spec, ["stages.0.depth=1,2"], measure=True, repeats=1)
    assert [row.status for row in rows] == ["ok", "ok"]
    assert all(row.latency_ms is not None and row.latency_ms > 0 for row in rows)


def test_bench_batch_sizes_must_be_positive(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["bench", "spectformer", "--batch", "1,0"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "archspec bench: error: argument --batch: expected sizes of at least 1, like 1,8, got 1,0"
    )
