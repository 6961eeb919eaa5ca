"""What ``--data`` names: the bundled digits, an image folder, or an ``.npz`` file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from archspec.data.arrays import digits
from archspec.data.catalog import Catalog, Images
from archspec.data.decode import MAX_IMAGE_PIXELS
from archspec.data.errors import DataError
from archspec.data.files import kind, unreadable
from archspec.data.folder import scan_folder
from archspec.data.npz import scan_npz

BUILTIN = "builtin:"
_CHOICES = "--data takes digits, a folder of class subfolders or a .npz file"


def scan(source: str | Path, *, max_pixels: int = MAX_IMAGE_PIXELS) -> Catalog:
    """Labels, classes and sizes of ``source``, reading only what is cheap (headers, not pixels).

    ``source`` is ``builtin:digits`` (scikit-learn's digits), ``digits`` (the same, unless a path
    ``./digits`` exists: then it is refused as ambiguous), a folder of class subfolders, or an
    ``.npz`` file with arrays ``x`` and ``y``. A :class:`~pathlib.Path` is always a path.
    """
    text = str(source)
    if not isinstance(source, Path):
        if text.startswith(BUILTIN):
            if text != f"{BUILTIN}digits":
                raise DataError(f"{text}: no such built-in data set; the one built in is builtin:digits")
            return digits(text)
        if text == "digits":
            if os.path.lexists(text):
                raise DataError(
                    "digits: names both the bundled digits and the path ./digits; write builtin:digits for the "
                    "bundled set or ./digits for the path"
                )
            return digits(text)
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise DataError(f"{text}: max_pixels must be a positive number of pixels, got {max_pixels!r}")
    path = Path(text)
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file or folder ({_CHOICES})") from None
    except OSError as exc:
        raise unreadable(path, exc) from None
    if stat.S_ISDIR(status.st_mode):
        return scan_folder(path, text, max_pixels)
    if path.suffix.lower() == ".npz":
        return scan_npz(path, text)
    what = "a regular file" if stat.S_ISREG(status.st_mode) else kind(status.st_mode)
    raise DataError(f"{path}: not a folder or a .npz file, but {what} ({_CHOICES})")


def load_images(source: str | Path, size: tuple[int, int] | None = None, resize: str = "crop") -> Images:
    """``scan(source).load(size, resize)``: every image in memory."""
    return scan(source).load(size, resize)
