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
