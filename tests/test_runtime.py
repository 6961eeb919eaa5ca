"""runtime.retain_freed_memory: freed activations are reused instead of page-faulted in again."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest
from conftest import tiny

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")

# Minor page faults of the last three of ten 64 MiB matrix products, with or without the setting.
PROBE = """
import resource, sys, torch
from archspec.runtime import freed_memory_retained, retain_freed_memory
if sys.argv[1] == "retain":
    assert retain_freed_memory() and retain_freed_memory() and freed_memory_retained()
x, w = torch.randn(4096, 64), torch.randn(4096, 64)
counts = []
with torch.inference_mode():
    for _ in range(10):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        torch.nn.functional.linear(x, w).relu_().sum()
        counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(sum(counts[-3:]))
"""


def _faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_retained_memory_stops_page_faults():
    system, retained = _faults("system"), _faults("retain")
    pages = 3 * 64 * 2**20 // 4096
    assert system >= pages // 512  # at least one fault per 2 MiB page, whatever the huge-page setting
    assert retained * 10 < system, (system, retained)


@pytest.mark.parametrize("flag, malloc", [([], "retain"), (["--system-malloc"], "system")])
def test_bench_records_the_allocator_setting(tmp_path, flag, malloc):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(json.dumps(tiny()))
    command = [sys.executable, "-m", "archspec", "bench", str(spec), "--batch", "1", "--repeats", "1", "--warmup", "1"]
    done = subprocess.run([*command, "--format", "json", *flag], capture_output=True, text=True, check=True)
    assert [row["malloc"] for row in json.loads(done.stdout)] == [malloc]


def test_peak_memory_is_not_inflated_by_retained_memory():
    code = """
import torch
from archspec import bench
from archspec.runtime import retain_freed_memory
assert retain_freed_memory()
with torch.inference_mode():
    for _ in range(3):
        torch.ones(2**27).sum()  # 512 MiB, freed at once and kept by the process
    with bench._peak_memory(torch.device("cpu")) as peak:
        torch.ones(2**20).sum()  # 4 MiB
print(peak[0])
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(done.stdout) < 512  # MiB: the 512 MiB block was handed back before the reset


BUILD = """
import json, sys
import archspec
from archspec.runtime import freed_memory_retained
before = freed_memory_retained()
archspec.create_model(sys.argv[1], device=sys.argv[2], retain_memory=sys.argv[3] == "default")
print(json.dumps([before, freed_memory_retained()]))
"""


@pytest.mark.parametrize(
    "device, mode, after",
    [("cpu", "default", True), ("cpu", "off", False), ("meta", "default", False)],
)
def test_building_on_the_cpu_retains_freed_memory_unless_told_not_to(tmp_path, device, mode, after):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(json.dumps(tiny()))
    done = subprocess.run([sys.executable, "-c", BUILD, str(spec), device, mode], capture_output=True, text=True,
                          check=True)  # fmt: skip
    assert json.loads(done.stdout) == [False, after]


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
