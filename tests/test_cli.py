"""The command line: output streams, exit codes, and no torch import where none is needed."""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys

import pytest
import torch
from conftest import ROOT

import archspec
from archspec.cli import main
from archspec.fingerprint import spec_fingerprint

SPEC = str(ROOT / "specs" / "spectformer.yaml")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "archspec", *args], capture_output=True, text=True, cwd=ROOT)


def test_validate_does_not_import_torch():
    code = (
        "import sys; from archspec.cli import main; "
        "status = main(['validate', 'specs/spectformer.yaml']); "
        "print('torch' in sys.modules, status)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.splitlines()[-1] == "False 0"


def test_summary_does_not_import_torch():
    code = (
        "import sys; from archspec.cli import main; "
        "main(['summary', 'specs/spectformer.yaml']); print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.splitlines()[-1] == "False"


def test_console_entry_pauses_the_collector_until_torch_is_needed():
    code = """
import gc, sys
from archspec import cli
assert "pydantic" not in sys.modules and "torch" not in sys.modules  # both load after run() pauses gc
gc.disable()
cli._gc_paused = True
assert cli.main(["validate", "specs/spectformer.yaml"]) == 0
assert not gc.isenabled()  # torch-free commands run paused throughout
cli._import_torch()
print(gc.isenabled(), cli._gc_paused)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.splitlines()[-1] == "True False", result.stderr


def test_console_entry_exits_with_the_command_status(tmp_path):
    good, bad = _run("validate", "specs/spectformer.yaml"), _run("validate", str(tmp_path / "missing.yaml"))
    assert (good.returncode, bad.returncode) == (0, 1)


def test_validate_all_specs():
    result = _run("validate", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "specs").glob("*.yaml")))
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "specs/spectformer-h-b.yaml: ok (SpectFormer-H-B: 33,052,880 params, 13.281 GFLOPs, 1000 out)",
        "specs/spectformer-h-l.yaml: ok (SpectFormer-H-L: 54,675,792 params, 26.513 GFLOPs, 1000 out)",
        "specs/spectformer-h-s.yaml: ok (SpectFormer-H-S: 22,226,928 params, 8.190 GFLOPs, 1000 out)",
        "specs/spectformer.yaml: ok (SpectFormer: 14,183,334 params, 6.915 GFLOPs, 6 out)",
    ]
    assert result.stderr == ""


def test_invalid_spec_exits_1_with_messages_on_stderr(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: Tiny\nstages: []\nhead: {type: pool}\n")
    result = _run("validate", str(bad), "specs/spectformer.yaml")
    assert result.returncode == 1
    assert result.stderr == (
        f"{bad}:2:1: stages: tuple should have at least 1 item after validation, not 0 [AS204]\n"
        "hint (AS204, invalid value): give a value of the expected type within the stated bounds\n"
    )
    assert result.stdout == "specs/spectformer.yaml: ok (SpectFormer: 14,183,334 params, 6.915 GFLOPs, 6 out)\n"
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2():
    assert _run("frobnicate").returncode == 2
    result = _run("build", "specs/spectformer.yaml", "--device", "gpu")
    assert result.returncode == 2
    assert result.stderr == (
        "error: unknown device 'gpu' (try cpu, cuda, cuda:1 or meta) [AS601]\n"
        "hint (AS601, bad command-line value): see `archspec COMMAND --help`\n"
    )
    assert _run("build", "specs/spectformer.yaml", "--batch", "0").returncode == 2


def test_summary_table(capsys):
    assert main(["summary", SPEC]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "SpectFormer: 14,183,334 params, 6.915 GFLOPs per sample",
        "part     layers                                 output        params    GFLOPs",
        "-------  -------------------------------------  --------  ----------  --------",
        "stage 1  conv stem; 3×spectral + 3×pvt2         3136×64      914,912     2.286",
        "stage 2  conv downsample; 4×spectral + 4×pvt2   784×128    1,824,384     2.199",
        "stage 3  conv downsample; 6×attention + 6×pvt2  196×320    4,095,040     1.891",
        "stage 4  conv downsample; 3×attention + 3×pvt2  49×448     4,932,032     0.495",
        "head     class_attention head                   6          2,416,966     0.044",
        "-------  -------------------------------------  --------  ----------  --------",
        "total    input 3×224×224                        6         14,183,334     6.915",
        "spec fingerprint: 2185d3b78dde3f5d",
    ]  # a column is as wide as its widest cell, or its heading and two spaces; numbers are right-aligned


def test_summary_markdown(capsys):
    assert main(["summary", SPEC, "--format", "md"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "| part    | layers                                | output   |     params |   GFLOPs |",
        "|:--------|:--------------------------------------|:---------|-----------:|---------:|",
        "| stage 1 | conv stem; 3×spectral + 3×pvt2        | 3136×64  |    914,912 |    2.286 |",
        "| stage 2 | conv downsample; 4×spectral + 4×pvt2  | 784×128  |  1,824,384 |    2.199 |",
        "| stage 3 | conv downsample; 6×attention + 6×pvt2 | 196×320  |  4,095,040 |    1.891 |",
        "| stage 4 | conv downsample; 3×attention + 3×pvt2 | 49×448   |  4,932,032 |    0.495 |",
        "| head    | class_attention head                  | 6        |  2,416,966 |    0.044 |",
        "| total   | input 3×224×224                       | 6        | 14,183,334 |    6.915 |",
        "spec fingerprint: 2185d3b78dde3f5d",
    ]


def test_summary_json(capsys):
    assert main(["summary", SPEC, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["params"], data["flops"], data["output"]) == (14_183_334, 6_915_277_312, [6])
    assert [stage["grid"] for stage in data["stages"]] == [[56, 56], [28, 28], [14, 14], [7, 7]]
    block = data["stages"][1]["nodes"][1]
    assert block["module_paths"] == ["block2.0"]
    assert block["children"][1]["args"] == {
        "dim": 128,
        "height": 28,
        "width": 28,
        "conv_in": 3,
        "conv_out": 3,
        "resize": "interpolate",
    }


def test_build_prints_tree_and_table(capsys):
    assert main(["build", SPEC, "--batch", "2"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("SpectFormer(\n  (patch_embed1): Stem(\n")
    assert "total    input 3×224×224                        6         14,183,334     6.915" in captured.out
    assert captured.err.startswith("ok: built SpectFormer (14,183,334 params) on cpu as float32 in ")
    assert "forward 2×3×224×224 → 2×6 in " in captured.err


def test_build_on_meta_device(capsys):
    assert main(["build", SPEC, "--device", "meta", "--no-tree"]) == 0
    assert "on meta as float32" in capsys.readouterr().err


def test_build_save_refuses_to_overwrite(tmp_path, capsys):
    target = tmp_path / "weights.pt"
    assert main(["build", SPEC, "--no-tree", "--save", str(target)]) == 0
    saved = torch.load(target, weights_only=True)
    assert saved["format"] == "archspec-checkpoint/1"
    assert saved["spec"]["name"] == "SpectFormer"
    assert saved["spec_fingerprint"] == "2185d3b78dde3f5d"
    assert len(saved["structure_fingerprint"]) == 16
    assert len(saved["state_dict"]) == 307
    before = target.read_bytes()
    assert main(["build", SPEC, "--no-tree", "--save", str(target)]) == 2
    assert f"error: {target} exists; pass --force to overwrite it [AS602]\n" in capsys.readouterr().err
    assert target.read_bytes() == before
    # Loading checks the spec: weights saved for depth 6 do not load into depth 8, and the message says why.
    assert main(["build", SPEC, "--no-tree", "--weights", str(target), "--set", "stages.2.depth=8"]) == 1
    assert capsys.readouterr().err == (
        f"error: {target}: saved for a different spec (fingerprint 2185d3b78dde3f5d, this spec "
        f"{spec_fingerprint(archspec.load_spec(SPEC, ['stages.2.depth=8']).spec)}); checkpoint → this spec:\n"
        "  stages[2].depth: 6 → 8 [AS502]\n"
        "hint (AS502, checkpoint does not fit): load it into the spec it was saved for; the message lists each key, "
        "shape or spec value that differs\n"
    )
    assert main(["build", SPEC, "--no-tree", "--save", str(target)]) == 2
    assert f"error: {target} exists; pass --force to overwrite it [AS602]\n" in capsys.readouterr().err
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["weights.pt"]


@pytest.mark.parametrize(("precision", "dtype"), [("bf16", "bfloat16"), ("fp64", "float64")])
def test_build_precisions(precision, dtype, capsys):
    assert main(["build", SPEC, "--no-tree", "--precision", precision]) == 0
    assert f"as {dtype}" in capsys.readouterr().err


def test_build_loads_official_weights(tmp_path, capsys):
    import re

    import archspec

    donor = archspec.build(archspec.load_spec(SPEC), seed=3)
    official = {re.sub(r"^(block\d+\.\d+)\.m\.", r"\1.attn.", k): v for k, v in donor.state_dict().items()}
    path = tmp_path / "official.pth"
    torch.save({"model": official}, path)
    assert main(["build", SPEC, "--no-tree", "--weights", str(path)]) == 0
    assert f"loaded weights from {path}" in capsys.readouterr().err
    official.pop("head.bias")
    torch.save(official, path)
    assert main(["build", SPEC, "--no-tree", "--weights", str(path)]) == 1
    assert capsys.readouterr().err.startswith(
        f"error: {path}: checkpoint does not fit the model (read as the spectformer layout) (1 problems):\n"
        "  missing: head.bias (6,) [AS502]\n"
    )


def test_summary_at_another_input_size(capsys):
    assert main(["summary", SPEC, "--input", "3x384x320"]) == 0
    table = capsys.readouterr().out
    planned = archspec.plan(archspec.load_spec(SPEC, ["input.size=[384, 320]"]))
    assert "total    input 3×384×320" in table
    assert f"{planned.params:,}" in table
    assert [stage.grid for stage in planned.stages] == [(96, 80), (48, 40), (24, 20), (12, 10)]
    with pytest.raises(SystemExit) as stopped:
        main(["summary", SPEC, "--input", "384"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "archspec summary: error: argument --input: expected CxHxW, e.g. 3x384x384, got 384"
    )


def test_quiet_and_verbose_are_the_same_everywhere(capsys):
    assert main(["summary", SPEC, "--verbose"]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"{SPEC}: loaded and planned in ")
    assert err.endswith(" ms (fingerprint 2185d3b78dde3f5d)\n")
    assert main(["build", SPEC, "--no-tree", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # no status line
    assert captured.out.startswith("SpectFormer: 14,183,334 params")  # data is unaffected
    assert main(["validate", SPEC, "-q", "--set", "stages.2.heads=3"]) == 1
    assert capsys.readouterr().err == (
        "--set stages.2.heads=3: stages[2].heads: unknown key 'heads' "
        "(valid keys: dim, depth, block, mixer, ffn, norm, downsample, each) [AS201]\n"
    )
    for command in _subparsers():  # every command, list, fit and convert included
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "-q, --quiet" in capsys.readouterr().out


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "pipe"])
@pytest.mark.parametrize("quiet", [False, True], ids=["normal", "quiet"])
def test_progress_bar_only_on_a_terminal_and_never_when_quiet(monkeypatch, capsys, terminal, quiet):
    stream = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    assert main(["sweep", SPEC, "--grid", "num_classes=3,4", *(["--quiet"] if quiet else [])]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4  # the table is on stdout either way
    if terminal and not quiet:
        drawn = stream.getvalue()
        assert "2/2" in drawn and "num_classes=4" in drawn and drawn.endswith("\n")
    else:
        assert stream.getvalue() == ""


def test_build_finds_shipped_specs_by_name_and_warm_starts(tmp_path, capsys):
    import archspec

    parent = archspec.build(archspec.load_spec(SPEC), seed=3)
    path = tmp_path / "parent.pt"
    torch.save(parent.state_dict(), path)
    assert main(["build", "spectformer", "--no-tree", "--set", "stages.3.depth=4", "--init-from", str(path)]) == 0
    err = capsys.readouterr().err
    copied = len(parent.state_dict())
    assert f"warm start from {path}: copied {copied} tensors\nnew (" in err
    assert "block4.3.norm1.weight" in err and "block4.2.norm1.weight" not in err.split("new (", 1)[1].split("\n")[0]
    assert main(["build", "spectformer", "--no-tree", "--weights", str(path), "--init-from", str(path)]) == 2


def test_a_reader_that_goes_away_ends_the_command_quietly():
    """``archspec summary ... --format json | head -c 10``: no BrokenPipeError traceback, the status of a SIGPIPE."""
    import subprocess
    import sys

    spec = str(ROOT / "specs" / "spectformer-h-l.yaml")
    command = [sys.executable, "-m", "archspec", "summary", spec, "--format", "json"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT) as process:
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.read(1) == b"{"
        process.stdout.close()  # about 290 KB follow, more than a pipe holds: the writer meets EPIPE
        assert process.wait(timeout=60) == 141
        assert process.stderr.read() == b""


def test_messages_reach_the_terminal_with_control_characters_escaped(tmp_path, capsys):
    spec = tmp_path / "evil.yaml"
    spec.write_text(
        'name: x\n"\\e[1A\\e[2K\\rx.yaml: ok\\e[8m\\u202e": 1\nstages: [{dim: 8, depth: 1, mixer: spectral}]\n'
    )
    assert main(["validate", str(spec)]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\u202e" not in err and "\r" not in err
    assert "\\x1b[1A\\x1b[2K\\x0dx.yaml: ok\\x1b[8m\\u202e" in err.splitlines()[0]


def test_timing_on_the_meta_device_is_refused(capsys):
    assert main(["bench", SPEC, "--device", "meta"]) == 2
    assert "--device meta runs no kernels, so there is nothing to time; use cpu or cuda" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["build", SPEC, "--seed", str(10**29)],
            "argument --seed: must be between 0 and 2**63 - 1, got " + str(10**29),
        ),
        (["bench", SPEC, "--threads", "100000"], "argument --threads: must be at most 1024, got 100000"),
        (["summary", SPEC, "--input", "3x²x32"], "argument --input: expected CxHxW, e.g. 3x384x384, got 3x²x32"),
        (["build", SPEC, "--device", "mps"], "--device mps: this machine or torch build has no mps backend"),
    ],
)
def test_arguments_out_of_range_are_usage_errors(args, message, capsys):
    try:
        status = main(args)
    except SystemExit as exit:  # argparse's own checks exit from inside parse_args
        status = exit.code
    assert status == 2
    assert message in capsys.readouterr().err


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    from archspec.cli import _parser

    parser = _parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_top_level_help_lists_every_command(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    listed = [line.split()[0] for line in out.splitlines() if re.match(r"    \S", line)]  # wrapped lines go deeper
    assert listed == list(_subparsers())
    assert {"fit", "bench", "export", "convert", "list"} <= set(listed)


def test_every_spec_argument_says_it_takes_a_shipped_name():
    seen = 0
    for name, parser in _subparsers().items():
        for action in parser._actions:
            if action.metavar in ("SPEC", "A", "B"):
                assert "a spec file or a shipped name (see archspec list)" in str(action.help), name
                seen += 1
    assert seen == 13  # validate, summary, show, build, convert, render, diff (2), sweep, fit, search, bench, export


def test_argparse_messages_name_no_internal_function():
    for name, parser in _subparsers().items():
        for action in parser._actions:
            if action.type is not None:
                assert not action.type.__name__.startswith("_"), f"{name} {action.option_strings}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build", "x", "--batch", "1,2"], "argument --batch: invalid whole number value: '1,2'"),
        (["build", "x", "--batch", "0"], "argument --batch: must be at least 1, got 0"),
        (["build", "x", "--seed", "q"], "argument --seed: invalid seed value: 'q'"),
        (["fit", "x", "--threads", "1.5"], "argument --threads: invalid thread count value: '1.5'"),
        (["fit", "x", "--epochs", "x"], "argument --epochs: invalid whole number value: 'x'"),
        (["fit", "x", "--lr", "x"], "argument --lr: invalid number value: 'x'"),
    ],
)
def test_bad_option_values_are_named_readably(capsys, args, message):
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"archspec {args[0]}: error: {message}"
