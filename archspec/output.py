"""Writing output files safely: whole or not at all, and never over an existing file unless asked."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from archspec.errors import ArchspecError

MAX_LINE = 400
"""Characters of one message line shown on a terminal; the rest is counted, not echoed."""

_BIDI = {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}


def _escaped(char: str) -> str:
    code = ord(char)
    if char in "\n\t":
        return char
    if code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0:
        return f"\\x{code:02x}"
    if code in _BIDI:
        return f"\\u{code:04x}"
    return char


def for_terminal(text: str) -> str:
    """``text`` safe to print: control and bidirectional-override characters escaped (so a spec's
    keys cannot move the cursor, retitle the window or reorder a line), each line cut at
    :data:`MAX_LINE` characters."""
    lines = []
    for line in "".join(map(_escaped, text)).split("\n"):
        if len(line) > MAX_LINE:
            line = f"{line[:MAX_LINE]}… ({len(line) - MAX_LINE:,} more characters)"
        lines.append(line)
    return "\n".join(lines)


class OutputExistsError(ArchspecError):
    """The target file exists and overwriting it was not asked for."""

    code = "AS602"


def write_atomic(path: str | Path, write: Callable[[BinaryIO], object], force: bool = False) -> Path:
    """Call ``write`` on a temporary file beside ``path``, then rename it into place.

    An interrupted or failing ``write`` leaves no partial file behind, and an existing ``path`` is
    only replaced when ``force`` is set.
    """
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists; pass --force to overwrite it")
    if path.is_dir():
        raise OutputExistsError(f"{path} is a directory")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates the file private (0600); give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | Path, text: str, force: bool = False) -> Path:
    return write_atomic(path, lambda handle: handle.write(text.encode()), force)


def tty_progress(index: int, total: int, label: str) -> None:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return
    width = 24
    filled = width * index // max(total, 1)
    end = "\n" if index == total else ""
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {index}/{total} {label[:60]:<60}{end}")
    sys.stderr.flush()
