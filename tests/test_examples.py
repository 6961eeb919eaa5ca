"""The console examples of README.md and docs/*.md, run through the CLI and compared with what they show.

An example is a ```console block with at least one ``$ archspec ...`` line followed by output. Its
commands run in order, in-process (``archspec.cli.main``, stdout and stderr captured together, in
the order they are written), in a fresh folder that holds ``specs`` (a link to the shipped specs)
and every ```yaml block of the same page that starts with a ``# NAME.yaml`` comment (the
``my-variant.yaml`` of the README's Variants section, for instance). A command shown without
output is not run. The output is compared line for line after masking what changes from run to
run (durations, images per second, the folder's path); a line ``...`` stands for any number of
lines, and a line ending in ``...`` for any line that starts with what comes before. Filters in a
pipe (``| head -N``, ``| grep TEXT``) are applied to the captured output, and a line with a shell
substitution (``$(...)``) runs in bash with ``python -m archspec``.

Every example runs unless it is in ``SKIPPED``, which says why. ``SETUP`` makes the files an
example reads that no page writes (a reference checkpoint, a diverged one).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import runpy
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import ROOT

from archspec.cli import main

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@dataclass
class Command:
    line: str
    expected: list[str] = field(default_factory=list)


@dataclass
class Example:
    page: str
    line: int
    commands: list[Command]

    @property
    def key(self) -> str:
        """The page and the example's first command: how SKIPPED and SETUP name it."""
        return f"{self.page}: {self.commands[0].line}"


def _examples() -> list[Example]:
    found = []
    for page in PAGES:
        text = page.read_text()
        name = page.relative_to(ROOT).as_posix()
        for block in re.finditer(r"^```console\n(.*?)^```", text, re.M | re.S):
            commands: list[Command] = []
            for line in block.group(1).splitlines():
                if line.startswith("$ "):
                    commands.append(Command(line[2:]))
                elif commands:
                    commands[-1].expected.append(line)
            if any(c.expected for c in commands):
                found.append(Example(name, text[: block.start()].count("\n") + 1, commands))
    return found


EXAMPLES = _examples()

SKIPPED = {
    "docs/commands.md: archspec fit specs/spectformer.yaml --data digits --threads 2 --save spectformer-digits.pt"
    " --log spectformer-digits.jsonl": "trains 5 epochs (about 40 s on 2 cores); losses and accuracies depend on the"
    " CPU's kernels and thread count",
    "docs/commands.md: python benchmarks/shapes_folder.py shapes": "trains ResNet-18 for 10 epochs (about 30 s)",
    "docs/commands.md: archspec fit resnet18 --data shapes --size 64 --augment --epochs 10 --threads 2 --loader stream"
    " --workers 2": "trains ResNet-18 for 10 epochs with worker processes",
    "docs/commands.md: python benchmarks/reference_file.py resnet18 resnet18_timm.pth": "fine-tunes ResNet-18 for 10"
    " epochs",
    "docs/commands.md: archspec export specs/spectformer.yaml --format onnx -o spectformer.onnx": "ONNX export and the"
    " onnxruntime check take tens of seconds, and the largest difference from eager depends on the CPU's kernels",
}
"""Examples not run, with the reason. Keep it short: anything cheap and deterministic is run."""


def _timm_resnet18(folder: Path) -> None:
    """resnet18_timm.pth, timm's names with seeded weights, as benchmarks/reference_file.py writes it."""
    argv = sys.argv
    sys.argv = ["reference_file.py", "resnet18", str(folder / "resnet18_timm.pth")]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            runpy.run_path(str(ROOT / "benchmarks" / "reference_file.py"), run_name="__main__")
    finally:
        sys.argv = argv


def _diverged_resnet18(folder: Path) -> None:
    """diverged.pth: a resnet18 state_dict (archspec's names) whose head.weight holds 12 NaNs."""
    import torch

    import archspec

    state = archspec.create_model("resnet18").state_dict()
    state["head.weight"].view(-1)[:12] = float("nan")
    torch.save(state, folder / "diverged.pth")


SETUP: dict[str, list[Callable[[Path], None]]] = {
    "docs/commands.md: archspec build resnet18 --set stages.3.depth=3 --init-from resnet18_timm.pth --no-tree": [
        _timm_resnet18
    ],
    "docs/commands.md: archspec convert resnet18 resnet18_timm.pth -o resnet18.pt": [
        _timm_resnet18,
        _diverged_resnet18,
    ],
}

RUN_IN_ROOT = {"docs/commands.md: archspec list"}
"""Examples that show paths relative to the checkout, so they run there (they write nothing)."""


def _mask(text: str, folder: Path) -> str:
    text = text.replace(str(folder), "<folder>").replace(str(ROOT), "<root>")
    text = re.sub(r"\b\d+(\.\d+)? (ms|s)\b", "<time>", text)
    text = re.sub(r"\b\d+(\.\d+)? images/s\b", "<rate>", text)
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def _pattern(expected: list[str], folder: Path) -> re.Pattern[str]:
    parts = []
    for line in _mask("\n".join(expected), folder).split("\n"):
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        elif line.endswith("..."):
            parts.append(re.escape(line[:-3]) + r"[^\n]*\n")
        else:
            parts.append(re.escape(line) + r"\n")
    return re.compile("".join(parts), re.S)


def _archspec(args: list[str], cwd: Path) -> str:
    """Run ``archspec ARGS`` in-process in ``cwd``; stdout and stderr together, in order."""
    out = io.StringIO()
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        # SystemExit: argparse's usage errors, whose message is the output
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), contextlib.suppress(SystemExit):
            main(args)
    finally:
        os.chdir(previous)
    return out.getvalue()


def _run(line: str, cwd: Path) -> str:
    if "$(" in line:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        script = f'archspec() {{ {shlex.quote(sys.executable)} -m archspec "$@"; }}\n{line}'
        done = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
        return done.stdout + done.stderr
    words = shlex.split(line)
    stages: list[list[str]] = [[]]
    for word in words:
        if word == "|":
            stages.append([])
        else:
            stages[-1].append(word)
    command, *filters = stages
    assert command[0] == "archspec", f"only archspec commands run here: {line}"
    args = []
    for word in command[1:]:
        matches = sorted(p.relative_to(cwd).as_posix() for p in cwd.glob(word)) if "*" in word else []
        args += matches or [word]
    output = _archspec(args, cwd)
    for name, *rest in filters:
        lines = output.splitlines()
        if name == "head":
            lines = lines[: int(rest[0].lstrip("-n"))]
        elif name == "tail":
            lines = lines[-int(rest[0].lstrip("-n")) :]
        elif name == "grep":
            lines = [x for x in lines if rest[0] in x]
        else:
            raise AssertionError(f"unknown filter {name} in {line}")
        output = "".join(x + "\n" for x in lines)
    return output


def _files_of(page: str) -> dict[str, str]:
    """The ```yaml blocks of a page that start with a ``# NAME.yaml`` comment: files its examples read."""
    text = (ROOT / page).read_text()
    return {
        m.group(1): m.group(0).split("\n", 1)[1].rsplit("```", 1)[0]
        for m in re.finditer(r"^```yaml\n# ([\w.-]+\.yaml)\n.*?^```", text, re.M | re.S)
    }


def test_every_example_is_run_or_skipped_with_a_reason():
    keys = {example.key for example in EXAMPLES}
    assert len(keys) == len(EXAMPLES), "two examples of a page start with the same command"
    assert set(SKIPPED) <= keys, f"SKIPPED names examples that are gone: {set(SKIPPED) - keys}"
    assert set(SETUP) <= keys, f"SETUP names examples that are gone: {set(SETUP) - keys}"
    assert set(RUN_IN_ROOT) <= keys, f"RUN_IN_ROOT names examples that are gone: {RUN_IN_ROOT - keys}"
    for example in EXAMPLES:
        if example.key not in SKIPPED:
            assert all(c.line.startswith("archspec ") for c in example.commands if c.expected), example.key


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.key not in SKIPPED], ids=lambda e: e.key)
def test_example(example: Example, tmp_path: Path):
    folder = tmp_path
    (folder / "specs").symlink_to(ROOT / "specs")
    for name, text in _files_of(example.page).items():
        (folder / name).write_text(text)
    for setup in SETUP.get(example.key, []):
        setup(folder)
    cwd = ROOT if example.key in RUN_IN_ROOT else folder
    for command in example.commands:
        if not command.expected:
            continue
        output = _run(command.line, cwd)
        masked = _mask(output, folder) + "\n"
        expected = "\n".join(command.expected)
        if not _pattern(command.expected, folder).fullmatch(masked):
            pytest.fail(
                f"{example.page}:{example.line}: $ {command.line}\n--- shown:\n{expected}\n--- printed:\n{output}"
            )
