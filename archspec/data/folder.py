"""An image folder: one subfolder per class, sorted by name (the first is label 0), images at any depth inside.

The scan reads the folder tree and each image's header, never its pixels. Rules that keep it safe:

- names starting with a dot (files and folders) are skipped; other files that are not images are
  skipped and counted;
- a class folder without images is an error: skipping it would shift the label of every class after it;
- a symbolic link is followed only when it points to a file inside the data folder; a link that
  leaves the folder, and a link to a folder (never followed, so no folder is read twice or in a loop),
  are errors;
- a file with an image suffix that is not a regular file (a FIFO, socket or device) is an error, and
  is never opened.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archspec.data.catalog import Catalog, Digest, Reader
from archspec.data.decode import IMAGE_SUFFIXES, MAX_IMAGE_PIXELS, Header, decode, probe
from archspec.data.errors import DataError
from archspec.data.files import not_regular, unreadable


@dataclass(frozen=True)
class _File:
    path: Path
    parts: tuple[str, ...]  # relative to the data folder
    size: int
    mtime_ns: int


class FolderReader(Reader):
    """Decodes image ``index`` of a scanned folder from its file (picklable: paths and headers only)."""

    def __init__(self, files: list[_File], headers: list[Header], channels: int, dtype: str, max_pixels: int) -> None:
        self.paths = tuple(str(file.path) for file in files)
        self.identity = tuple(("/".join(file.parts), file.size, file.mtime_ns) for file in files)
        self.headers = tuple(headers)
        self.channels = channels
        self.dtype = dtype
        self.max_pixels = max_pixels

    def read(self, index: int, size: tuple[int, int], resize: str) -> np.ndarray:
        header = self.headers[index]
        return decode(self.paths[index], header, size, resize, self.channels, self.dtype, self.max_pixels)

    def name(self, index: int) -> str:
        return self.paths[index]

    def fingerprint(self, digest: Digest) -> None:
        for name, size, mtime_ns in self.identity:
            digest.update(f"{name}\0{size}\0{mtime_ns}\n".encode("utf-8", "surrogateescape"))


class _Walk:
    """The walk of one data folder: what it found and how many other files it skipped."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.real_root = os.path.realpath(root)
        self.skipped = 0

    def _link(self, path: Path) -> os.stat_result | None:
        """The target's status for a link to a file inside the data folder (None: it does not exist)."""
        target = os.path.realpath(path)
        if os.path.commonpath([self.real_root, target]) != self.real_root:
            raise DataError(
                f"{path}: a symbolic link to {target}, outside the data folder {self.root}; links are followed only "
                "to files inside it (copy the file in instead)"
            )
        try:
            status = os.stat(path)
        except FileNotFoundError:
            return None
        if stat.S_ISDIR(status.st_mode):
            raise DataError(
                f"{path}: a symbolic link to the folder {target}; links to folders are not followed, so that no "
                "folder is read twice or in a loop (move the folder here instead)"
            )
        return status

    def _entries(self, folder: Path) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(folder) as found:
                return sorted((entry for entry in found if not entry.name.startswith(".")), key=lambda e: e.name)
        except OSError as exc:
            raise unreadable(folder, exc) from None

    def classes(self) -> list[Path]:
        """The class folders, sorted by name; files beside them are counted as skipped."""
        folders = []
        for entry in self._entries(self.root):
            path = Path(entry.path)
            if entry.is_symlink():
                self._link(path)
                self.skipped += 1
            elif entry.is_dir(follow_symlinks=False):
                folders.append(path)
            else:
                self.skipped += 1
        return folders

    def images(self, folder: Path) -> list[_File]:
        """The image files under ``folder``, at any depth, sorted by their path."""
        found: list[_File] = []
        pending = [folder]
        while pending:
            current = pending.pop()
            for entry in self._entries(current):
                path = Path(entry.path)
                image = path.suffix.lower() in IMAGE_SUFFIXES
                try:
                    if entry.is_symlink():
                        status = self._link(path)
                        if status is None:
                            if image:
                                target = os.path.realpath(path)
                                raise DataError(f"{path}: a symbolic link to {target}, which does not exist")
                            self.skipped += 1
                            continue
                    elif entry.is_dir(follow_symlinks=False):
                        pending.append(path)
                        continue
                    else:
                        status = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    raise unreadable(path, exc) from None
                if not image:
                    self.skipped += 1
                    continue
                if not stat.S_ISREG(status.st_mode):
                    raise not_regular(path, status.st_mode)
                parts = path.relative_to(self.root).parts
                found.append(_File(path, parts, status.st_size, status.st_mtime_ns))
        return sorted(found, key=lambda file: file.parts)


def scan_folder(root: Path, source: str, max_pixels: int = MAX_IMAGE_PIXELS) -> Catalog:
    """The class folders of ``root``, their images' headers and labels (no pixels decoded)."""
    walk = _Walk(root)
    classes = walk.classes()
    if not classes:
        raise DataError(
            f"{source}: no images found: expected one subfolder per class holding image files "
            f"({', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    files: list[_File] = []
    labels: list[int] = []
    for label, folder in enumerate(classes):
        found = walk.images(folder)
        if not found:
            raise DataError(
                f"{folder}: class folder holds no images (labels follow the folder order, so skipping it would "
                "shift every later class); add images or remove the folder"
            )
        files += found
        labels += [label] * len(found)
    if len(classes) < 2:
        raise DataError(f"{source}: every image has label 0: a classifier needs at least 2 classes")
    headers = [probe(file.path, max_pixels) for file in files]
    channels = 1 if all(header.grey for header in headers) else 3
    dtype = "float32" if any(header.deep for header in headers) else "uint8"
    sizes = np.array([(header.height, header.width) for header in headers], dtype=np.int64)
    reader = FolderReader(files, headers, channels, dtype, max_pixels)
    names = tuple(folder.name for folder in classes)
    return Catalog(
        source, "folder", names, np.array(labels, dtype=np.int64), channels, sizes, dtype, reader, walk.skipped
    )
