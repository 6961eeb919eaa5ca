"""runtime.bfloat16_warning: bfloat16 work on a CPU without native kernels is warned about.

(Freed-memory retention is archspec.accel's: see tests/test_accel.py.)
"""

from __future__ import annotations

import json

import pytest
from conftest import tiny

BF16_WARNING = (
    "warning: this CPU has no native bfloat16 kernels (no AVX512-BF16 or AMX), so bfloat16 autocast runs "
    "several times slower than float32 here"
)


class _Stop(Exception):
    pass


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("command", [["bench", "--dtype", "bfloat16"], ["fit", "--data", "digits", "--amp"]])
def test_bfloat16_on_a_cpu_without_native_kernels_is_warned_about(tmp_path, monkeypatch, capsys, native, command):
    import archspec.bench
    import archspec.fit
    from archspec import runtime
    from archspec.cli import main

    def stop(*args, **kwargs):
        raise _Stop

    monkeypatch.setattr(runtime, "cpu_has_native_bfloat16", lambda: native)
    monkeypatch.setattr(archspec.bench, "run", stop)  # the warning comes before any timing or training
    monkeypatch.setattr(archspec.fit, "fit", stop)
    spec = tmp_path / "tiny.yaml"
    spec.write_text(json.dumps(tiny()))
    with pytest.raises(_Stop):
        main([command[0], str(spec), *command[1:]])
    assert (BF16_WARNING in capsys.readouterr().err.splitlines()) == (not native)
    assert runtime.bfloat16_warning("cuda") is None


# What a benchmark names: the CPU, its bfloat16 capability, threads and torch.


@pytest.mark.parametrize(
    ("flags", "native", "expected"),
    [
        ("fpu avx2 avx512_bf16 amx_bf16 amx_tile", True, "native bfloat16 (AMX and AVX512-BF16)"),
        ("fpu avx2 avx512_bf16", True, "native bfloat16 (AVX512-BF16)"),
        ("fpu avx2 avx512_bf16", False, "no native bfloat16 (the CPU reports AVX512-BF16)"),
        ("fpu avx2", False, "no native bfloat16"),
    ],
)
def test_the_machine_line_names_the_cpu_its_bfloat16_and_torch(tmp_path, monkeypatch, flags, native, expected):
    import builtins

    import torch

    from archspec import runtime

    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nmodel name\t: Example CPU 9000\nflags\t\t: {flags}\n")
    real_open = builtins.open
    monkeypatch.setattr(
        builtins, "open", lambda path, *a, **k: real_open(info if path == "/proc/cpuinfo" else path, *a, **k)
    )
    monkeypatch.setattr(runtime, "cpu_has_native_bfloat16", lambda: native)
    assert runtime.bfloat16_capability() == expected
    assert (
        runtime.machine_description(threads=2) == f"Example CPU 9000, {expected}, 2 threads, torch {torch.__version__}"
    )
    assert runtime.machine_description(threads=1).endswith(f", 1 thread, torch {torch.__version__}")


def test_bench_names_the_machine_under_its_table_and_in_its_records(tmp_path, capsys):
    from archspec.cli import main
    from archspec.runtime import machine_description

    spec = tmp_path / "tiny.yaml"
    spec.write_text(json.dumps(tiny()))
    command = ["bench", str(spec), "--batch", "1", "--repeats", "1", "--warmup-runs", "1", "--threads", "1"]
    assert main([*command, "--format", "md"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == ["", f"machine: {machine_description('cpu', 1)}"]
    assert main([*command, "--format", "json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["machine"] == machine_description("cpu", 1)
