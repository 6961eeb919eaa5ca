"""Opening data files: regular files only, checked before and after opening, never with a call that can block.

A FIFO named ``x.png`` would block an ordinary ``open`` until something writes to it; here the file
is looked up first and opened with ``O_NONBLOCK``, and anything but a regular file is refused by name.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from archspec.data.errors import DataError

_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a folder",
}
_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def kind(mode: int) -> str:
    """What a file of ``st_mode`` ``mode`` is, in words: ``a FIFO``, ``a socket``..."""
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def not_regular(path: str | Path, mode: int) -> DataError:
    return DataError(f"{path}: not a regular file ({kind(mode)}); only regular files are read")


def unreadable(path: str | Path, exc: OSError) -> DataError:
    return DataError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})")


def open_regular(path: str | Path) -> BinaryIO:
    """``path`` opened for binary reading; a DataError unless it is a regular file, before and after the open."""
    try:
        before = os.stat(path)
    except OSError as exc:
        raise unreadable(path, exc) from None
    if not stat.S_ISREG(before.st_mode):
        raise not_regular(path, before.st_mode)
    try:
        descriptor = os.open(path, _FLAGS)
    except OSError as exc:
        raise unreadable(path, exc) from None
    try:
        after = os.fstat(descriptor)
        if not stat.S_ISREG(after.st_mode):  # replaced between the look-up and the open
            raise not_regular(path, after.st_mode)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise
