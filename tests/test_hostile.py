"""Hostile and broken input: each case ends in one located message, exit 1 and no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import ROOT, default_sigint

import archspec
from archspec import budget
from archspec.budget import BudgetError, check_budget


def _validate(path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "archspec", "validate", str(path)], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def _alias_bomb() -> bytes:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    return ("\n".join(lines) + "\n").encode()


HOSTILE = {
    "alias-bomb": (_alias_bomb(), "{p}:4:1: the spec expands to more than 10,000 values [AS103]"),
    "deep-nesting": (
        b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n",
        "{p}:1:68: the spec nests deeper than 64 levels [AS103]",
    ),
    "deep-mapping": (
        "".join("  " * i + f"k{i}:\n" for i in range(100)).encode() + b"  " * 100 + b"v: 1\n",
        "{p}:64:127: the spec nests deeper than 64 levels [AS103]",
    ),
    "50-MB": (
        b"name: x\n" + b"# padding line\n" * 3_500_000,
        "{p}: the file has 52,500,008 bytes; spec files are limited to 262,144 [AS101]",
    ),
    "python-tag": (
        b"name: !!python/object/apply:os.system ['echo pwned']\n",
        "{p}:1:7: unsupported YAML tag 'tag:yaml.org,2002:python/object/apply:os.system': specs may only hold "
        "mappings, lists, strings, numbers and booleans [AS103]",
    ),
    "binary": (bytes(range(256)) * 4, "{p}: not UTF-8 text (bad byte at offset 128) [AS101]"),
    "empty": (b"", "{p}:1:1: the file is empty [AS102]"),
    "huge-numbers": (
        b"name: x\nstages:\n  - {dim: 10000000, depth: 1000000000, mixer: {type: spectral}}\n",
        "{p}:3:6: stages[0].dim: input should be less than or equal to 65536 (got 10000000) [AS204]",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_hostile_file(tmp_path, case):
    content, first_line = HOSTILE[case]
    path = tmp_path / "spec.yaml"
    path.write_bytes(content)
    result = _validate(path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == first_line.format(p=path)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_directory_and_extends_cases(tmp_path):
    assert _validate(tmp_path).stderr.splitlines()[0] == f"{tmp_path}: is a directory, not a spec file [AS101]"
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nname: A\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    assert _validate(tmp_path / "a.yaml").stderr.splitlines()[0] == (
        f"{tmp_path / 'b.yaml'}:1:1: extends: cycle a.yaml → b.yaml → a.yaml [AS104]"
    )
    (tmp_path / "c.yaml").write_text("extends: ../../../../../etc/passwd\n")
    assert _validate(tmp_path / "c.yaml").stderr.splitlines()[0] == (
        f"{tmp_path / 'c.yaml'}:1:1: extends: ../../../../../etc/passwd is not a .yaml file [AS104]"
    )


def test_budget_refuses_a_typo_before_allocating(monkeypatch):
    monkeypatch.setattr(budget, "available_bytes", lambda: 8 * 2**30)
    big = archspec.plan(archspec.load_spec(ROOT / "specs" / "spectformer.yaml", ["stages.3.dim=44800",
                        "stages.3.mixer.heads=1", "head.heads=1"]))  # fmt: skip
    with pytest.raises(BudgetError) as info:
        check_budget(big)
    assert str(info.value) == (
        "SpectFormer needs about 224.82 GiB of parameters (60,350,821,542 × 4 bytes) and "
        "171.5 MiB of activations at batch 1, over the budget of 4.00 GiB "
        "(half of the 8.00 GiB available); check the spec for a typo, or pass --max-params or --no-budget"
    )
    check_budget(archspec.plan(archspec.load_spec(ROOT / "specs" / "spectformer.yaml")))  # fits
    with pytest.raises(BudgetError) as info:
        check_budget(big, max_params=10**6)
    assert str(info.value).endswith(
        f"has {big.params:,} parameters, over --max-params 1,000,000; raise the limit or pass --no-budget"
    )


WRITER = textwrap.dedent(
    """\
    import signal, sys, time
    from archspec.cli import _terminate
    from archspec.output import write_atomic
    signal.signal(signal.SIGTERM, _terminate)

    def slow(handle):
        handle.write(b"partial" * 1000)
        handle.flush()
        print("writing", flush=True)
        time.sleep(60)

    try:
        write_atomic(sys.argv[1], slow)
    except KeyboardInterrupt:
        sys.exit(130)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_write_leaves_nothing(tmp_path, sig):
    target = tmp_path / "out.bin"
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        preexec_fn=default_sigint,
    ) as proc:
        assert proc.stdout is not None and proc.stdout.readline() == "writing\n"
        assert len(list(tmp_path.iterdir())) == 1  # the temporary file exists while writing
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 130
    assert list(tmp_path.iterdir()) == []


def test_cli_turns_sigterm_into_a_clean_exit(tmp_path):
    cmd = [sys.executable, "-m", "archspec", "sweep", "specs/spectformer-h-l.yaml", "--grid", "num_classes=1,2,3,4,5,6",
           "--measure", "--repeats", "5"]  # fmt: skip
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT) as proc:
        time.sleep(3)
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.splitlines()[-1] == "interrupted"
    assert "Traceback" not in err
