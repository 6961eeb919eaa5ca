"""Read a YAML spec into plain Python data plus a map of where every key was written.

Only YAML's safe types are accepted (mappings, lists, strings, numbers, booleans, null); any other
tag, such as ``!!python/object``, is refused, so a spec can never run code. Duplicate keys are an
error rather than a silent "last one wins", and alias expansion is bounded so a small file cannot
unfold into gigabytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from archspec.errors import KeyPath, Position, SourceMap, SpecFileError

MAX_NODES = 20_000
"""Upper bound on values produced from one file, aliases expanded (a real spec has a few hundred)."""

MAX_DEPTH = 64
"""Upper bound on nesting depth (a real spec nests five or six levels)."""

MAX_BYTES = 1 << 20
"""Upper bound on a spec file's size (a real spec is a few kB); larger files are refused unread."""

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with a nesting limit, checked before its recursive composer can overflow."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                where = Position(self.name, mark.line + 1, mark.column + 1)
                raise SpecFileError(where, f"the spec nests deeper than {MAX_DEPTH} levels", "AS103")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Converter:
    """Turns a composed YAML node tree into Python data, recording positions as it goes."""

    def __init__(self, file: str, loader: _Loader) -> None:
        self.file = file
        self.loader = loader
        self.source = SourceMap(file)
        self.count = 0

    def position(self, node: yaml.Node) -> Position:
        return Position(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def convert(self, node: yaml.Node, path: KeyPath) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
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
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError:
            raise self._bad_tag(node) from None

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        if node.tag != _MAP_TAG:
            raise self._bad_tag(node)
        self.loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise SpecFileError(self.position(key_node), "mapping keys must be plain words", "AS102")
            key = self.loader.construct_object(key_node)
            if not isinstance(key, str):
                key = str(key)
            if key in result:
                first = self.source.positions.get((*path, key))
                raise SpecFileError(
                    self.position(key_node), f"duplicate key '{key}' (first written at {first})", "AS102"
                )
            self.source.positions[(*path, key)] = self.position(key_node)
            result[key] = self.convert(value_node, (*path, key))
        return result

    def _bad_tag(self, node: yaml.Node) -> SpecFileError:
        return SpecFileError(
            self.position(node),
            f"unsupported YAML tag {node.tag!r}: specs may only hold mappings, lists, strings, numbers and booleans",
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


def parse_yaml(text: str, file: str = "<string>") -> tuple[Any, SourceMap]:
    """Parse YAML text with safe semantics, returning the data and its :class:`SourceMap`."""
    _check_flow_depth(text, file)
    try:
        loader = _Loader(text)  # the reader checks every character here, before any parsing
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, text, file) from None
    loader.name = file
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecFileError(Position(file, 1, 1), "the file is empty", "AS102")
        converter = _Converter(file, loader)
        converter.source.positions[()] = converter.position(node)
        data = converter.convert(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Position(file, mark.line + 1, mark.column + 1) if mark else Position(file, 1, 1)
        raise SpecFileError(where, f"invalid YAML: {exc.problem or exc.context}", "AS102") from None
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, text, file) from None
    except yaml.YAMLError as exc:
        raise SpecFileError(Position(file, 1, 1), f"invalid YAML: {exc}", "AS102") from None
    finally:
        loader.dispose()
    return data, converter.source


def _reader_error(exc: yaml.reader.ReaderError, text: str, file: str) -> SpecFileError:
    """A character YAML forbids (a control character, say), located by line and column."""
    line = text.count("\n", 0, exc.position) + 1
    column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
    char = exc.character if isinstance(exc.character, str) else chr(exc.character)
    return SpecFileError(Position(file, line, column), f"character {char!r} is not allowed in YAML", "AS102")


def read_spec_file(path: str | Path) -> tuple[Any, SourceMap]:
    """Read and parse one spec file. Failures become :class:`SpecFileError` naming the file."""
    path = Path(path)
    name = str(path)
    if path.is_dir():
        raise SpecFileError(name, "is a directory, not a spec file")
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise SpecFileError(name, f"the file has {size:,} bytes; spec files are limited to {MAX_BYTES:,}")
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)  # the file may have grown since stat
        if len(raw) > MAX_BYTES:
            raise SpecFileError(name, f"the file has more than {MAX_BYTES:,} bytes; spec files are limited to that")
    except FileNotFoundError:
        raise SpecFileError(name, "no such file") from None
    except OSError as exc:
        raise SpecFileError(name, f"cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecFileError(name, f"not UTF-8 text (bad byte at offset {exc.start})") from None
    return parse_yaml(text, name)
