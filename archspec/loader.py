"""Read a YAML spec into plain Python data plus a map of where every key was written.

Only YAML's core types are accepted (mappings, lists, strings, numbers, booleans, null); any other
tag, such as ``!!python/object``, ``!!binary`` or a date, is refused, so a spec can never run code
or smuggle in a value the spec models would coerce. Duplicate keys are an error rather than a
silent "last one wins".

libyaml's parser does the parsing where PyYAML has it (several times faster than PyYAML's Python
one); text it refuses is parsed again in Python, so the messages are PyYAML's. Size is bounded
before the work it guards: only regular files are opened, their bytes are capped
before reading, values are counted while PyYAML composes them (not after it has built the tree), and
alias expansion is counted too, so a small file cannot unfold into gigabytes. A :class:`ReadBudget`
carries these caps across a spec and all the bases it ``extends``.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from archspec.errors import KeyPath, Position, SourceMap, SpecFileError

MAX_NODES = 10_000
"""Upper bound on values in a spec and its bases together, aliases expanded (a real spec has a few hundred)."""

MAX_DEPTH = 64
"""Upper bound on nesting depth (a real spec nests five or six levels)."""

MAX_BYTES = 1 << 18
"""Upper bound on the bytes of a spec and its bases together (a real spec is a few kB); a file that
would pass it is refused unread."""

_MAP_TAG = "tag:yaml.org,2002:map"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_SCALARS = (str, int, float, bool, type(None))


@dataclass
class ReadBudget:
    """What a spec and the chain of bases it ``extends`` may still use, together."""

    bytes: int = MAX_BYTES
    values: int = MAX_NODES


class _Composer(yaml.composer.Composer):
    """PyYAML's composer with a nesting limit, checked before its recursion can overflow, and a count of
    the values it composes, checked as it goes."""

    name: str
    depth = 0
    composed = 0
    limit = MAX_NODES

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self.depth += 1
        if not (isinstance(parent, yaml.MappingNode) and index is None):  # a mapping's key is not a value
            self.composed += 1
        try:
            if self.depth > MAX_DEPTH or self.composed > self.limit:
                mark = self.peek_event().start_mark  # type: ignore[attr-defined]  # the parser's
                where = Position(self.name, mark.line + 1, mark.column + 1)
                problem = (
                    f"the spec nests deeper than {MAX_DEPTH} levels"
                    if self.depth > MAX_DEPTH
                    else f"the spec expands to more than {MAX_NODES:,} values"
                )
                raise SpecFileError(where, problem, "AS103")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Loader(_Composer, yaml.SafeLoader):
    """PyYAML's safe loader, all in Python: its error messages are the ones archspec reports."""


if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _FastLoader(_Composer, CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        """libyaml's parser (in C, several times faster) under the same composer, constructor and resolver."""

        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            yaml.composer.Composer.__init__(self)

    LOADERS: tuple[type[Any], ...] = (_FastLoader, _Loader)
else:  # a PyYAML built without libyaml
    LOADERS = (_Loader,)

# Exponent floats without a dot (``1e-5``), which YAML 1.1 reads as strings, are floats as in YAML 1.2.
for _loader in LOADERS:
    _loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )


class _Converter:
    """Turns a composed YAML node tree into Python data, recording positions as it goes."""

    def __init__(self, file: str, loader: _Loader, budget: ReadBudget) -> None:
        self.file = file
        self.loader = loader
        self.source = SourceMap(file)
        self.budget = budget

    def position(self, node: yaml.Node) -> Position:
        return Position(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def convert(self, node: yaml.Node, path: KeyPath) -> Any:
        self.budget.values -= 1
        if self.budget.values < 0:
            # Aliases share nodes, so point at the top-level key being expanded rather than the shared node.
            where = self.source.positions.get(path[:1]) or self.position(node)
            raise SpecFileError(where, f"the spec expands to more than {MAX_NODES:,} values", "AS103")
        if len(path) > MAX_DEPTH:
            raise SpecFileError(self.position(node), f"the spec nests deeper than {MAX_DEPTH} levels", "AS103")
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                raise self._bad_tag(node)
            items = []
            for index, item in enumerate(node.value):
                self.source.positions.setdefault((*path, index), self.position(item))
                items.append(self.convert(item, (*path, index)))
            return items
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError:
            raise self._bad_tag(node) from None
        if not isinstance(value, _SCALARS):  # a date, bytes (!!binary) and the like
            raise self._bad_tag(node)
        if isinstance(value, str):
            self._check_text(value, node)
        return value

    def _check_text(self, value: str, node: yaml.Node) -> None:
        """A string must be text: YAML's ``"\\ud800"`` escape can write half of a surrogate pair."""
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            code = ord(value[exc.start])
            raise SpecFileError(
                self.position(node),
                f"the string holds \\u{code:04x}, half of a surrogate pair, which is not text",
                "AS102",
            ) from None

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        if node.tag != _MAP_TAG:
            raise self._bad_tag(node)
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:  # YAML 1.1's "<<", whose copies grow with every level
                raise SpecFileError(
                    self.position(key_node),
                    "YAML merge keys (<<) are not supported: use extends to build on another spec, or an alias",
                    "AS103",
                )
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise SpecFileError(self.position(key_node), "mapping keys must be plain words", "AS102")
            key = self.loader.construct_object(key_node)
            if not isinstance(key, str):
                key = str(key)
            self._check_text(key, key_node)
            if key in result:
                first = self.source.positions.get((*path, key))
                raise SpecFileError(
                    self.position(key_node), f"duplicate key '{key}' (first written at {first})", "AS102"
                )
            self.source.positions[(*path, key)] = self.position(key_node)
            result[key] = self.convert(value_node, (*path, key))
        return result

    def _implicit(self, node: yaml.Node) -> bool:
        """Whether YAML gave a plain scalar this tag by itself (``2024-01-01`` is a date): quoting helps there."""
        if not isinstance(node, yaml.ScalarNode) or node.style:
            return False
        resolved = self.loader.resolve(yaml.ScalarNode, node.value, (True, False))  # type: ignore[no-untyped-call]
        return bool(resolved == node.tag)

    def _bad_tag(self, node: yaml.Node) -> SpecFileError:
        return SpecFileError(
            self.position(node),
            f"unsupported YAML tag {node.tag!r}: specs may only hold mappings, lists, strings, numbers and booleans"
            + (" (quote the value to make it a string)" if self._implicit(node) else ""),
            "AS103",
        )


def _check_flow_depth(text: str, file: str) -> None:
    """Refuse deeply nested ``[``/``{`` before parsing: PyYAML's scanner slows quadratically with them.

    Quoted strings and comments are skipped, so brackets inside them do not count.
    """
    depth, line, column, quote, comment = 0, 1, 0, "", False
    for char in text:
        column += 1
        if char == "\n":
            line, column, comment = line + 1, 0, False
        elif comment:
            continue
        elif quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#":
            comment = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise SpecFileError(
                    Position(file, line, column), f"the spec nests deeper than {MAX_DEPTH} levels", "AS103"
                )
        elif char in "]}":
            depth = max(0, depth - 1)


def _compose(text: str, file: str, limit: int) -> tuple[yaml.Node | None, Any]:
    """The node tree of ``text`` and the loader that made it (to construct its scalars).

    libyaml parses first; text it refuses is parsed again in Python, whose messages archspec
    reports (and which may accept what libyaml does not).
    """
    for index, loader_type in enumerate(LOADERS):
        loader = loader_type(text)
        loader.name, loader.limit = file, limit
        try:
            return loader.get_single_node(), loader
        except yaml.YAMLError as exc:
            loader.dispose()
            if index == len(LOADERS) - 1:
                raise _yaml_error(exc, file) from None
    raise AssertionError("unreachable")


def _yaml_error(exc: yaml.YAMLError, file: str) -> SpecFileError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = Position(file, mark.line + 1, mark.column + 1) if mark else Position(file, 1, 1)
        return SpecFileError(where, f"invalid YAML: {exc.problem or exc.context}", "AS102")
    return SpecFileError(Position(file, 1, 1), f"invalid YAML: {exc}", "AS102")


def parse_yaml(text: str, file: str = "<string>", budget: ReadBudget | None = None) -> tuple[Any, SourceMap]:
    """Parse YAML text with safe semantics, returning the data and its :class:`SourceMap`.

    ``budget`` is what is left for this text of a spec chain's value cap; it is charged for the values read.
    """
    budget = budget if budget is not None else ReadBudget()
    _check_flow_depth(text, file)
    try:
        yaml.reader.Reader(text)  # checks every character, before any parsing
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, text, file) from None
    node, loader = _compose(text, file, max(budget.values, 0))
    try:
        if node is None:
            raise SpecFileError(Position(file, 1, 1), "the file is empty", "AS102")
        converter = _Converter(file, loader, budget)
        converter.source.positions[()] = converter.position(node)
        data = converter.convert(node, ())
    except yaml.YAMLError as exc:  # a constructor's complaint about a scalar
        raise _yaml_error(exc, file) from None
    finally:
        loader.dispose()
    return data, converter.source


def _reader_error(exc: yaml.reader.ReaderError, text: str, file: str) -> SpecFileError:
    """A character YAML forbids (a control character, say), located by line and column."""
    line = text.count("\n", 0, exc.position) + 1
    column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
    char = exc.character if isinstance(exc.character, str) else chr(exc.character)
    return SpecFileError(Position(file, line, column), f"character {char!r} is not allowed in YAML", "AS102")


_FILE_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a named pipe",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def _limit_text(limit: int) -> str:
    if limit == MAX_BYTES:
        return f"spec files are limited to {MAX_BYTES:,}"
    return f"only {limit:,} of the {MAX_BYTES:,} bytes a spec and its bases may hold together are left for it"


def read_spec_file(path: str | Path, budget: ReadBudget | None = None) -> tuple[Any, SourceMap]:
    """Read and parse one spec file. Failures become :class:`SpecFileError` naming the file.

    Only a regular file is read (a named pipe or a device could block or never end), and no more of
    it than ``budget`` has bytes left for.
    """
    budget = budget if budget is not None else ReadBudget()
    name = str(path)
    limit = max(budget.bytes, 0)
    try:
        # Non-blocking, so that opening a named pipe returns at once; the file's kind is checked next.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                kind = _FILE_KINDS.get(stat.S_IFMT(mode), "not a regular file")
                raise SpecFileError(name, f"is {kind}, not a spec file")
            size = os.fstat(fd).st_size
            if size > limit:
                raise SpecFileError(name, f"the file has {size:,} bytes; {_limit_text(limit)}")
            raw = handle.read(limit + 1)  # the file may have grown since fstat
        if len(raw) > limit:
            raise SpecFileError(name, f"the file has more than {limit:,} bytes; {_limit_text(limit)}")
    except FileNotFoundError:
        raise SpecFileError(name, "no such file") from None
    except IsADirectoryError:
        raise SpecFileError(name, "is a directory, not a spec file") from None
    except OSError as exc:
        raise SpecFileError(name, f"cannot read: {exc.strerror}") from None
    budget.bytes -= len(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecFileError(name, f"not UTF-8 text (bad byte at offset {exc.start})") from None
    return parse_yaml(text, name, budget)
