"""An ``.npz`` file, read without pickles and without trusting what it declares.

Before any array is allocated, the zip directory and each member's ``.npy`` header are read: object
dtypes are refused, the bytes a header declares (shape × item size) must be what the member holds,
everything together must fit the memory available (:func:`archspec.budget.memory_limit`), and a
deflated member must not inflate more than :data:`archspec.weights_file.MAX_RATIO`-fold (members
under :data:`~archspec.weights_file.RATIO_FLOOR` aside). Members are then read a chunk at a time
into arrays of the declared size, so a stream that holds more or less than it says is caught
without holding it. ``x`` is read only when the images are loaded; the scan reads ``y`` and ``classes``.
"""

from __future__ import annotations

import math
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, BinaryIO

import numpy as np
from numpy.lib import format as npy

from archspec import budget
from archspec.data.arrays import (
    MAX_CLASSES,
    ArrayReader,
    check_finite,
    check_label_layout,
    checked_labels,
    class_names,
    image_shape,
)
from archspec.data.catalog import Catalog, Digest, Reader
from archspec.data.errors import DataError
from archspec.data.files import open_regular
from archspec.weights_file import MAX_RATIO, RATIO_FLOOR, _size, shown

_CHUNK = 2**22
"""Bytes read from a member at a time."""
_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, RuntimeError, NotImplementedError,
           struct.error)  # fmt: skip
"""What zipfile, zlib and numpy's header parser raise on a damaged file."""


def _reason(exc: BaseException) -> str:
    name = "zlib.error" if isinstance(exc, zlib.error) else type(exc).__name__
    return f"{name}: {exc}"


@dataclass(frozen=True)
class Member:
    """One ``.npy`` member, as its zip entry and header describe it."""

    key: str
    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    fortran: bool
    dtype: np.dtype
    offset: int
    """Bytes of magic string and header before the data."""

    @property
    def count(self) -> int:
        return math.prod(self.shape)

    def layout(self) -> tuple[tuple[int, ...], bool, str]:
        return self.shape, self.fortran, self.dtype.str


class Archive:
    """An open ``.npz``: its zip directory read, its members' headers read on demand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: BinaryIO = open_regular(path)
        self.on_disk = os.fstat(self.handle.fileno()).st_size
        try:
            self.zip = zipfile.ZipFile(self.handle)
        except _ERRORS as exc:
            self.handle.close()
            raise self.unreadable(_reason(exc)) from None

    def __enter__(self) -> Archive:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.zip.close()
        self.handle.close()

    def unreadable(self, reason: str) -> DataError:
        return DataError(f"{self.path}: not a readable .npz file ({reason})")

    def keys(self) -> list[str]:
        """The array names, as ``numpy.load`` lists them (``x.npy`` is ``x``)."""
        return [name.removesuffix(".npy") for name in self.zip.namelist()]

    def member(self, key: str) -> Member:
        """The header of array ``key``, checked against its zip entry; no data is read."""
        names = set(self.zip.namelist())
        name = f"{key}.npy" if f"{key}.npy" in names else key
        info = self.zip.getinfo(name)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise self.unreadable(
                f"member {shown(name)} is compressed with zip method {info.compress_type}; numpy writes members "
                "stored (savez) or deflated (savez_compressed)"
            )
        if info.header_offset + info.compress_size > self.on_disk:  # else the ratio below could be made up
            raise self.unreadable(
                f"member {shown(name)} declares {_size(info.compress_size)} of compressed data from offset "
                f"{info.header_offset:,}, past the end of the file ({_size(self.on_disk)})"
            )
        compressed = info.compress_type == zipfile.ZIP_DEFLATED
        if compressed and info.file_size >= RATIO_FLOOR and info.file_size > MAX_RATIO * info.compress_size:
            ratio = info.file_size / max(info.compress_size, 1)
            raise DataError(
                f"{self.path}: member {shown(name)} inflates {ratio:,.0f}-fold, from {_size(info.compress_size)} to "
                f"{_size(info.file_size)}; image data does not compress like that, so the file is refused as a "
                f"possible zip bomb (at most {MAX_RATIO}-fold; numpy.savez stores arrays uncompressed)"
            )
        try:
            with self.zip.open(info) as handle:
                version = npy.read_magic(handle)
                if version == (1, 0):
                    shape, fortran, dtype = npy.read_array_header_1_0(handle)
                elif version == (2, 0):
                    shape, fortran, dtype = npy.read_array_header_2_0(handle)
                else:
                    raise ValueError(f".npy format version {version[0]}.{version[1]} is not read")
                offset = handle.tell()
        except Exception as exc:  # numpy's header parser tokenizes and evaluates: it raises many kinds of error
            raise self.unreadable(f"member {shown(name)}: {_reason(exc)}") from None
        if dtype.hasobject:
            raise DataError(
                f"{self.path}: {key} holds Python objects (dtype {dtype}), which only a pickle can restore; "
                ".npz files are read without pickles: save numbers (and class names as strings)"
            )
        if any(side < 0 for side in shape):
            raise self.unreadable(f"member {shown(name)} declares the shape {shape}")
        declared = math.prod(shape) * dtype.itemsize
        if declared != info.file_size - offset:
            raise self.unreadable(
                f"member {shown(name)} declares {'×'.join(map(str, shape)) or 'one'} {dtype} values, "
                f"{_size(declared)}, but holds {_size(max(0, info.file_size - offset))} of data"
            )
        return Member(key, info, shape, fortran, dtype, offset)

    def _chunks(self, member: Member) -> IO[bytes]:
        handle = self.zip.open(member.info)
        _exact(handle, member.offset)
        return handle

    def read(self, member: Member, dtype: np.dtype | None = None) -> np.ndarray:
        """The array ``member`` holds, converted to ``dtype`` (default its own) a chunk at a time."""
        out = np.empty(member.count, dtype=member.dtype if dtype is None else dtype)
        itemsize = member.dtype.itemsize
        step = max(1, _CHUNK // max(1, itemsize))
        try:
            with self._chunks(member) as handle:
                for start in range(0, member.count if itemsize else 0, step):
                    count = min(step, member.count - start)
                    out[start : start + count] = np.frombuffer(_exact(handle, count * itemsize), member.dtype, count)
                if handle.read(1):
                    raise ValueError("more data than its header declares")
        except _ERRORS as exc:
            raise self.unreadable(f"member {shown(member.info.filename)}: {_reason(exc)}") from None
        if member.fortran:
            return out.reshape(member.shape[::-1]).transpose()
        return out.reshape(member.shape)

    def digest(self, member: Member, digest: Digest) -> None:
        """Feed ``digest`` the bytes of ``member``'s data, a chunk at a time."""
        digest.update(f"{member.layout()}\n".encode())
        try:
            with self._chunks(member) as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
        except _ERRORS as exc:
            raise self.unreadable(f"member {shown(member.info.filename)}: {_reason(exc)}") from None


def _exact(handle: IO[bytes], count: int) -> bytes:
    data = handle.read(count)
    if len(data) != count:
        raise EOFError(f"the data ends {count - len(data):,} bytes early")
    return data


class NpzReader(Reader):
    """Reads ``x`` of a scanned ``.npz`` when the images are loaded (picklable: the path and what was scanned)."""

    def __init__(self, path: Path, layout: tuple[tuple[int, ...], bool, str], dtype: str) -> None:
        self.path = path
        self.layout = layout
        self.dtype = dtype

    def _member(self, archive: Archive) -> Member:
        member = archive.member("x")
        if member.layout() != self.layout:
            raise DataError(f"{self.path}: changed since it was scanned (x was {self.layout}, is {member.layout()})")
        return member

    def images(self) -> np.ndarray:
        """``x`` as (N, C, H, W) ``uint8`` or float32, checked for NaN and infinities."""
        with Archive(self.path) as archive:
            member = self._member(archive)
            shape = image_shape(str(self.path), member.shape, member.dtype)
            needed, limit = math.prod(shape) * np.dtype(self.dtype).itemsize, budget.memory_limit()
            if needed > limit:
                raise DataError(
                    f"{self.path}: x takes {_size(needed)} as {self.dtype}, more than the {_size(limit)} of memory "
                    "available"
                )
            x = archive.read(member, np.dtype(self.dtype))
        x = np.ascontiguousarray(x.reshape(shape))
        check_finite(str(self.path), x)
        return x

    def ready(self) -> Reader:
        return ArrayReader(self.images())

    def read(self, index: int, size: tuple[int, int], resize: str) -> np.ndarray:
        """Image ``index``; this reads all of ``x``: use :meth:`ready` for more than one."""
        return self.ready().read(index, size, resize)

    def fingerprint(self, digest: Digest) -> None:
        with Archive(self.path) as archive:
            archive.digest(self._member(archive), digest)


def scan_npz(path: Path, source: str) -> Catalog:
    """The headers of ``x``, ``y`` and ``classes``, and the labels and class names (``x`` is not read)."""
    with Archive(path) as archive:
        keys = archive.keys()
        missing = [key for key in ("x", "y") if key not in keys]
        if missing:
            found = ", ".join(sorted(keys)) or "none"
            raise DataError(f"{source}: missing array {' and '.join(missing)} (found: {found}); expected x, y")
        members = [archive.member(key) for key in ("x", "y", "classes") if key in keys]
        total, limit = sum(member.info.file_size for member in members), budget.memory_limit()
        if total > limit:
            raise DataError(
                f"{source}: its arrays take {_size(total)}, more than the {_size(limit)} of memory available"
            )
        x, y = members[0], members[1]
        count, channels, height, width = image_shape(source, x.shape, x.dtype)
        check_label_layout(source, y.shape, y.dtype, count)
        names = None
        if len(members) == 3:
            if members[2].count > MAX_CLASSES:
                raise DataError(
                    f"{source}: classes names {members[2].count:,} classes, more than the {MAX_CLASSES:,} allowed"
                )
            names = class_names(source, archive.read(members[2]))
        labels, classes = checked_labels(source, archive.read(y), count, names)
    dtype = "uint8" if x.dtype == np.uint8 else "float32"
    sizes = np.broadcast_to(np.array((height, width), dtype=np.int64), (count, 2))
    reader = NpzReader(path, x.layout(), dtype)
    return Catalog(source, "npz", classes, labels, channels, sizes, dtype, reader)
