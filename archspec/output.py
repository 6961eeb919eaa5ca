"""Writing output files safely: whole or not at all, and never over an existing file unless asked."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from archspec.errors import ArchspecError


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
