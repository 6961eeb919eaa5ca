"""bench: a smoke run on a tiny spec. Speed itself is for benchmarks/, never asserted here."""

from __future__ import annotations

import json

import pytest
from conftest import tiny

import archspec
from archspec import bench
from archspec.cli import main


def test_bench_reports_consistent_numbers():
    plan = archspec.plan(archspec.validate(tiny()))
    result = bench.run(plan, "tiny", batch=2, threads=1, warmup=1, repeats=3)
    assert (result.batch, result.mode, result.threads) == (2, "eager", 1)
    assert result.min_ms <= result.median_ms <= result.max_ms
    assert result.measurements >= 1 and result.runs_per_measurement >= 1
    assert abs(result.images_per_s - 2 / (result.median_ms / 1e3)) < 1e-6 * result.images_per_s
    assert abs(result.gflops_per_s - 2 * plan.flops / (result.median_ms / 1e3) / 1e9) < 1e-6 * result.gflops_per_s
    assert abs(result.efficiency - result.gflops_per_s / result.matmul_gflops_per_s) < 1e-9
    train = bench.run(plan, "tiny", batch=2, threads=1, train=True, warmup=1, repeats=2)
    assert train.mode == "eager train"
    assert abs(train.gflops_per_s - 3 * 2 * plan.flops / (train.median_ms / 1e3) / 1e9) < 1e-6 * train.gflops_per_s


def test_measure_times_blocks_for_at_least_the_minimum_run_time():
    import torch

    calls = []
    timed = bench.measure(lambda: calls.append(None), torch.device("cpu"), repeats=3)
    assert sum(timed.times) * timed.number_per_run >= bench.MIN_RUN_TIME  # times are seconds per call
    assert len(calls) >= len(timed.times) * timed.number_per_run + 3  # and three calls to learn a call's length
    assert min(timed.times) <= timed.median <= max(timed.times)


def test_bench_command_json(tmp_path, capsys):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(json.dumps(tiny()))  # JSON is YAML
    assert main(["bench", str(spec), "--batch", "1,2", "--repeats", "2", "--warmup-runs", "1", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["batch"], r["mode"]) for r in rows] == [(1, "eager"), (2, "eager")]
    with pytest.raises(SystemExit) as stopped:
        main(["bench", str(spec), "--batch", "1,x"])
    assert stopped.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == "archspec bench: error: argument --batch: expected sizes of at least 1, like 1,8, got 1,x"


def test_bench_times_a_checkpointed_training_step(tmp_path, capsys):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(json.dumps(tiny()))
    command = ["bench", str(spec), "--batch", "2", "--repeats", "1", "--warmup-runs", "1", "--format", "json"]
    assert main([*command, "--train", "--grad-checkpointing"]) == 0
    assert [(r["batch"], r["mode"]) for r in json.loads(capsys.readouterr().out)] == [(2, "eager train checkpointed")]
    assert main([*command, "--grad-checkpointing"]) == 2
    message = "error: --grad-checkpointing recomputes activations in the backward pass: it needs --train [AS601]"
    assert message in capsys.readouterr().err
