"""archspec.accel: the speed paths' one switch, how they reach a built model, what retained memory does,
and the plain-torch modules of archspec.nn that know nothing of them."""

from __future__ import annotations

import ast
import copy
import gc
import io
import json
import os
import platform
import subprocess
import sys
import weakref

import pytest
import torch
from conftest import ROOT, tiny

import archspec
from archspec import accel

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")


def _run(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=ROOT)  # fmt: skip


@pytest.mark.parametrize("path", sorted((ROOT / "archspec" / "nn").glob("*.py")), ids=lambda p: p.name)
def test_the_nn_modules_are_plain_torch(path):
    """No import of the speed paths (or the runtime settings), and no private torch API."""
    source = path.read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
        elif isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
    assert not imported & {"archspec.accel", "archspec.runtime", "torch._C"}, sorted(imported)
    for private in ("torch.ops.mkldnn", "torch._C", "mkldnn"):
        assert private not in source, private


@pytest.mark.parametrize(
    "value, on", [(None, True), ("", True), ("1", True), (" On ", True), ("yes", True), ("0", False), ("OFF", False),
                  ("false", False), ("no", False)]
)  # fmt: skip
def test_the_environment_variable_turns_the_paths_on_or_off(value, on):
    assert accel._from_environment(value) is on


def test_a_bad_environment_value_is_refused_by_name():
    with pytest.raises(accel.AccelSettingError, match=r"ARCHSPEC_ACCEL='maybe': use 1 .* or 0 "):
        accel._from_environment("maybe")


def test_the_command_line_reports_a_bad_environment_value_without_a_traceback(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(json.dumps(tiny()))
    code = "import sys; from archspec.cli import main; raise SystemExit(main(['build', sys.argv[1]]))"
    done = _run(code, str(spec), env={"ARCHSPEC_ACCEL": "maybe"})
    assert done.returncode != 0
    assert "error: ARCHSPEC_ACCEL='maybe': use 1 to turn archspec's CPU speed paths on or 0" in done.stderr
    assert "Traceback" not in done.stderr


SWITCHED_OFF = """
import json, sys, archspec
from archspec import accel
model = archspec.build(archspec.plan(archspec.validate(json.loads(sys.argv[1]))))
print(json.dumps([accel.enabled(), sum(map(accel.attached, model.modules())), accel.retain_freed_memory()]))
"""


def test_switched_off_by_the_environment_nothing_is_attached_and_the_allocator_is_left_alone():
    done = _run(SWITCHED_OFF, json.dumps(tiny()), env={"ARCHSPEC_ACCEL": "0"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [False, 0, False]


def _small(name: str, **options):
    from archspec.models import resolve_spec_path

    return archspec.build(archspec.load_spec(resolve_spec_path(name), ["input.size=64"]), **options)


@pytest.mark.parametrize("name", ["spectformer", "spectformer-h-s"])
def test_attaching_changes_no_module_name_key_or_parameter(name):
    plain, fast = _small(name, accel=False), _small(name, accel=True)
    assert sum(map(accel.attached, plain.modules())) == 0
    assert sum(map(accel.attached, fast.modules())) > 0
    assert str(fast) == str(plain)
    assert [type(m) for m in fast.modules()] == [type(m) for m in plain.modules()]
    assert list(fast.state_dict()) == list(plain.state_dict())
    assert sum(p.numel() for p in fast.parameters()) == sum(p.numel() for p in plain.parameters())
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(fast.eval()(x), plain.eval()(x), rtol=1e-4, atol=1e-5)


def test_the_token_linears_of_each_known_module_get_the_forward():
    model = _small("spectformer-h-s")
    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if accel.attached(module)}
    # mlp: the PVT-v2 FFNs of the attention stages; m: the attentions themselves (their attend)
    assert names == {"fc1", "fc2", "q", "kv", "proj", "mlp", "m"}
    assert accel.apply(model) == 0  # once is enough
    assert accel.remove(model) > 0 and sum(map(accel.attached, model.modules())) == 0


def test_a_model_with_attached_forwards_copies_pickles_and_is_freed_without_the_collector():
    model = _small("spectformer-h-s").eval()
    copied = copy.deepcopy(model)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    for other in (copied, loaded):
        forwards = [(m, m.__dict__[name]) for m in other.modules() for name in accel.ATTACHED if name in m.__dict__]
        assert {name for name in accel.ATTACHED for m in other.modules() if name in m.__dict__} == {"forward", "attend"}
        assert forwards and all(function.module() is m for m, function in forwards)  # bound to the copy
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    gc.disable()
    try:
        dropped = weakref.ref(loaded)
        del loaded, forwards, other
        assert dropped() is None  # no reference cycle keeps the model alive
    finally:
        gc.enable()


def test_switched_off_at_run_time_the_attached_forwards_take_no_speed_path(monkeypatch):
    model = _small("pvt_v2_b0").eval()
    calls = []
    monkeypatch.setattr(accel, "pointwise", lambda *args: calls.append(args))
    monkeypatch.setattr(accel, "_faster", {})
    accel.set_enabled(False)
    try:
        with torch.inference_mode():
            model(torch.randn(1, 3, 64, 64))
    finally:
        accel.set_enabled(True)
    assert calls == [] and accel._faster == {}


# Minor page faults of the last three of ten 64 MiB matrix products, with or without the setting.
PROBE = """
import resource, sys, torch
from archspec.accel import freed_memory_retained, retain_freed_memory
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
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True, cwd=ROOT)
    return int(done.stdout)


@glibc
def test_retained_memory_stops_page_faults():
    system, retained = _faults("system"), _faults("retain")
    pages = 3 * 64 * 2**20 // 4096
    assert system >= pages // 512  # at least one fault per 2 MiB page, whatever the huge-page setting
    assert retained * 10 < system, (system, retained)


@glibc
@pytest.mark.parametrize("flag, malloc", [([], "retain"), (["--system-malloc"], "system")])
def test_bench_records_the_allocator_setting(tmp_path, flag, malloc):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(json.dumps(tiny()))
    command = [sys.executable, "-m", "archspec", "bench", str(spec), "--batch", "1", "--repeats", "1"]
    command += ["--warmup-runs", "1"]
    done = subprocess.run([*command, "--format", "json", *flag], capture_output=True, text=True, check=True)
    assert [row["malloc"] for row in json.loads(done.stdout)] == [malloc]


@glibc
def test_peak_memory_is_not_inflated_by_retained_memory():
    code = """
import torch
from archspec import bench
from archspec.accel import retain_freed_memory
assert retain_freed_memory()
with torch.inference_mode():
    for _ in range(3):
        torch.ones(2**27).sum()  # 512 MiB, freed at once and kept by the process
    with bench._peak_memory(torch.device("cpu")) as peak:
        torch.ones(2**20).sum()  # 4 MiB
print(peak[0])
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert float(done.stdout) < 512  # MiB: the 512 MiB block was handed back before the reset


BUILD = """
import json, sys
import archspec
from archspec.accel import freed_memory_retained
before = freed_memory_retained()
options = {} if sys.argv[3] == "default" else {"retain_memory": sys.argv[3] == "on"}
archspec.build(archspec.plan(archspec.validate(json.loads(sys.argv[1]))), device=sys.argv[2], **options)
print(json.dumps([before, freed_memory_retained()]))
"""


@glibc
@pytest.mark.parametrize(
    "device, mode, after",
    [("cpu", "default", False), ("cpu", "on", True), ("cpu", "off", False), ("meta", "on", False)],
)
def test_building_leaves_the_allocator_alone_unless_asked(device, mode, after):
    done = _run(BUILD, json.dumps(tiny()), device, mode)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [False, after]
