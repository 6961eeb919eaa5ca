"""Errors that point at the YAML a user wrote.

Every problem in a spec is a :class:`Problem`: a key path and a message. A :class:`SpecError`
carries all problems found in one pass together with the :class:`SourceMap` of the file, so it
can print ``file:line:col: key.path: message`` for each of them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

PathPart = str | int
KeyPath = tuple[PathPart, ...]


def format_path(path: Sequence[PathPart]) -> str:
    """Render a key path the way a user reads it: ``stages[1].mixer.heads``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
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
class Problem:
    """One thing wrong with a spec, at one key path."""

    path: KeyPath
    message: str

    def render(self, source: SourceMap | None) -> str:
        where = str(source.locate(self.path)) if source is not None else "<spec>"
        return f"{where}: {format_path(self.path)}: {self.message}"


class ArchspecError(Exception):
    """Base class for every error archspec raises on purpose."""


class SpecError(ArchspecError):
    """A spec is invalid. Holds every problem found, not only the first."""

    def __init__(self, problems: Sequence[Problem], source: SourceMap | None = None) -> None:
        self.problems = list(dict.fromkeys(problems))  # a rule shared by many blocks reports once
        self.source = source
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [problem.render(self.source) for problem in self.problems]

    def with_source(self, source: SourceMap) -> SpecError:
        return SpecError(self.problems, source)


class SpecFileError(ArchspecError):
    """A spec file cannot be read or parsed at all (missing, not YAML, unsafe tag, ...)."""

    def __init__(self, position: Position | str, message: str) -> None:
        self.position = position
        super().__init__(f"{position}: {message}")


class CheckError(ArchspecError):
    """A built model disagrees with its plan (shape, parameter count, ...)."""
