"""Errors that point at the YAML a user wrote.

Every problem in a spec is a :class:`Problem`: a key path and a message. A :class:`SpecError`
carries all problems found in one pass together with the :class:`SourceMap` of the file, so it
can print ``file:line:col: key.path: message`` for each of them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

PathPart = str | int
KeyPath = tuple[PathPart, ...]


def format_path(path: Sequence[PathPart]) -> str:
    """Render a key path the way a user reads it: ``stages[1].mixer.heads``.

    A key that is not a plain word (empty, spaces, dots) is quoted: ``head['my key']``.
    """
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not re.fullmatch(r"[A-Za-z0-9_$-]+", part):
            text += f"[{part!r}]"
        else:
            text += f".{part}" if text else part
    return text or "<root>"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


@dataclass(frozen=True)
class Position:
    """A 1-based line and column in one file."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        # Values from the command line (--set) have no line: the origin is the argument itself.
        return f"{self.file}:{self.line}:{self.column}" if self.line else self.file


@dataclass
class SourceMap:
    """Where each key path of a loaded spec was written.

    ``positions`` maps a key path to the position of its key (for mapping entries) or of the
    item itself (for list items). Paths a user did not write resolve to their nearest written
    ancestor, so a problem in a default still points at the block that holds it.
    """

    file: str
    positions: dict[KeyPath, Position] = field(default_factory=dict)

    def locate(self, path: Sequence[PathPart]) -> Position:
        path = tuple(path)
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.positions.get((), Position(self.file, 1, 1))


@dataclass(frozen=True)
class ErrorKind:
    """One class of error: a stable code, what it means, and what usually fixes it."""

    code: str
    title: str
    hint: str


CATALOGUE: dict[str, ErrorKind] = {
    kind.code: kind
    for kind in (
        ErrorKind(
            "AS101",
            "unreadable spec file",
            "check the path; specs are regular UTF-8 text files of at most 256 KiB, bases included",
        ),
        ErrorKind("AS102", "invalid YAML", "fix the YAML syntax at the position shown (indentation, brackets, colons)"),
        ErrorKind(
            "AS103",
            "unsafe or oversized YAML",
            "specs hold plain mappings, lists, strings, numbers and booleans: no !!python tags, no deep nesting "
            "or alias bombs",
        ),
        ErrorKind(
            "AS104",
            "bad extends",
            "extends names a .yaml spec file, relative to the folder of the spec that writes it (.. allowed), or "
            "a shipped spec by name; a base must be a regular file holding spec keys, and bases must not form a cycle",
        ),
        ErrorKind(
            "AS201",
            "unknown key",
            "fix the spelling (see the suggestion) or remove the key; `archspec schema` lists every valid key",
        ),
        ErrorKind("AS202", "missing key", "add the key; the README's spec format section lists what is required"),
        ErrorKind("AS203", "unknown component type", "use one of the listed types; `archspec components` lists them"),
        ErrorKind("AS204", "invalid value", "give a value of the expected type within the stated bounds"),
        ErrorKind(
            "AS301",
            "contradiction in the plan",
            "change one of the values involved: widths must divide into heads, grids must fit strides and patterns "
            "must cover their stage",
        ),
        ErrorKind(
            "AS401",
            "over budget",
            "check the spec for a typo in a width or depth; --max-params or --no-budget lifts the limit",
        ),
        ErrorKind(
            "AS501",
            "unreadable checkpoint",
            "the file is truncated, corrupted, not a PyTorch or safetensors checkpoint, or would inflate past the "
            "memory available",
        ),
        ErrorKind(
            "AS502",
            "checkpoint does not fit",
            "load it into the spec it was saved for; the message lists each key, shape or spec value that differs",
        ),
        ErrorKind(
            "AS503",
            "checkpoint refused",
            "weights with NaN or infinite values load only with --allow-nonfinite; a model on the meta device holds "
            "no data to load into or save: build it on cpu or cuda",
        ),
        ErrorKind("AS601", "bad command-line value", "see `archspec COMMAND --help`"),
        ErrorKind("AS602", "output exists", "pick another file name or pass --force to replace it"),
        ErrorKind(
            "AS603",
            "cannot write output",
            "the message gives the reason: create the folder, free disk space, or name a regular file (a directory, "
            "link or device is never replaced)",
        ),
        ErrorKind("AS701", "model disagrees with its plan", "report it: a component's plan and module drifted apart"),
        ErrorKind(
            "AS702",
            "parameters without gradient",
            "a parameter the forward pass never uses breaks DDP: remove it from the component or use it",
        ),
        ErrorKind(
            "AS801", "cannot render", "install Graphviz's dot (apt-get install graphviz) or write .dot/.json/.graphml"
        ),
        ErrorKind(
            "AS802",
            "cannot export",
            "install onnx, onnxscript and onnxruntime (pip install onnx onnxscript onnxruntime, or "
            "pip install -e '.[export]' in a checkout); for a spec that cannot take other sizes, "
            "export with --dynamic batch; a numeric mismatch is a bug to report",
        ),
        ErrorKind("AS901", "component registry", "a component name is unknown or registered twice"),
        ErrorKind(
            "AS1001",
            "bad training data",
            "fix the file or folder named: a .npz holds x (N×C×H×W or N×H×W) and integer labels y from 0; a "
            "folder holds one non-empty subfolder of readable images per class; at least 2 classes",
        ),
        ErrorKind(
            "AS1002", "training diverged", "lower --lr, raise --warmup-epochs, or check the variant for a bad value"
        ),
        ErrorKind(
            "AS1003",
            "cannot resume",
            "resume with the spec, --set values, data and options the checkpoint was saved with (it lists them)",
        ),
        ErrorKind(
            "AS1101",
            "search space gives no valid spec",
            "check the key path and values of the axis named against the base spec (archspec show SPEC), "
            "or widen the constraints",
        ),
        ErrorKind(
            "AS1102",
            "study does not match",
            "a stored study keeps its space and objectives: search it as it was made, or give another --study",
        ),
    )
}
"""Every error code archspec reports. The README's troubleshooting section lists the same table."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec, at one key path, with its catalogue code."""

    path: KeyPath
    message: str
    code: str = "AS204"

    def render(self, source: SourceMap | None) -> str:
        where = str(source.locate(self.path)) if source is not None else "<spec>"
        return f"{where}: {format_path(self.path)}: {self.message}"


class ArchspecError(Exception):
    """Base class for every error archspec raises on purpose; ``code`` is its catalogue entry."""

    code = "AS601"


class SpecError(ArchspecError):
    """A spec is invalid. Holds every problem found, not only the first."""

    def __init__(self, problems: Sequence[Problem], source: SourceMap | None = None) -> None:
        self.problems = list(dict.fromkeys(problems))  # a rule shared by many blocks reports once
        self.source = source
        if source is not None:  # in the order they appear in the file, command-line values first
            self.problems.sort(key=lambda p: (source.locate(p.path).line, source.locate(p.path).column))
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [problem.render(self.source) for problem in self.problems]

    def with_source(self, source: SourceMap) -> SpecError:
        return SpecError(self.problems, source)


class SpecFileError(ArchspecError):
    """A spec file cannot be read or parsed at all (missing, not YAML, unsafe tag, ...)."""

    def __init__(self, position: Position | str, message: str, code: str = "AS101") -> None:
        self.position = position
        self.code = code
        super().__init__(f"{position}: {message}")


class CheckError(ArchspecError):
    """A built model disagrees with its plan (AS701), or has parameters without gradient (AS702)."""

    def __init__(self, message: str, code: str = "AS701") -> None:
        super().__init__(message)
        self.code = code
