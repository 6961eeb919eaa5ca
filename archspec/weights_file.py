"""Torch-free checks of a checkpoint file, made before torch is imported or anything is inflated.

A torch zip checkpoint is judged by its zip directory (the sizes torch allocates by), a safetensors
file by its header, a legacy torch file by its size: each must fit in the memory available, and a
zip member must not be compressed like a bomb. :func:`archspec.checkpoint.read_file` runs these
checks itself; the command line runs them before importing torch, so a refusal costs nothing.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

from archspec import budget
from archspec.errors import ArchspecError


class CheckpointError(ArchspecError):
    """A checkpoint cannot be read (AS501) or does not fit the model it is loaded into (AS502)."""

    def __init__(self, message: str, code: str = "AS502") -> None:
        super().__init__(message)
        self.code = code


MAX_RATIO = 100
"""The most a member of a torch zip checkpoint may inflate by. ``torch.save`` stores every member
uncompressed, and tensor data that another tool deflated shrinks a few times at most; a run of zeros
shrinks a thousandfold, which is what a zip bomb is made of."""
RATIO_FLOOR = 2**20
"""Members smaller than this are never refused for their ratio: a small pickle may compress well."""
MAX_HEADER = 100 * 2**20
"""The largest safetensors header read (the safetensors reader has the same bound)."""
_SAFETENSORS_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E4M3": 8, "F8_E5M2": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32, "C64": 64, "I64": 64, "U64": 64, "F64": 64,
}  # fmt: skip
"""Bits per element of the safetensors dtypes; a dtype not listed is left to the reader to judge."""


def shown(value: object, limit: int = 80) -> str:
    """``value`` as Python writes it (control characters escaped), cut to ``limit`` characters.

    A value nested too deeply for ``repr``, or an integer past Python's digit limit, is described instead.
    """
    try:
        text = repr(value)
    except (RecursionError, ValueError):
        return f"(a {type(value).__name__} too deep or too long to show)"
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def _size(count: int) -> str:
    if count >= 2**70:  # past any memory, and past what a float division (or str of a long int) copes with
        return f"about 10^{math.log10(count):.0f} bytes"
    if count < 2**20:
        return "1 byte" if count == 1 else f"{count:,} bytes"
    unit, scale = ("GiB", 2**30) if count >= 2**30 else ("MiB", 2**20)
    return f"{count / scale:.2f} {unit} ({count:,} bytes)"


def _too_large(path: Path, what: str, declared: int, limit: int) -> CheckpointError:
    return CheckpointError(
        f"{path}: {what} {_size(declared)}, more than the {_size(limit)} of memory available", "AS501"
    )


def _check_zip(path: Path, limit: int) -> None:
    """Refuse a torch zip checkpoint that would inflate past ``limit`` bytes or is compressed like a bomb.

    The sizes come from the zip's directory, which is what torch allocates by, so nothing is inflated.
    """
    on_disk = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint (a damaged zip archive: {exc})", "AS501") from None
    total = sum(member.file_size for member in members)
    if total > limit:
        raise _too_large(path, f"inflates from {_size(on_disk)} on disk to", total, limit)
    for member in members:
        compressed = member.compress_type != zipfile.ZIP_STORED
        if compressed and member.file_size >= RATIO_FLOOR and member.file_size > MAX_RATIO * member.compress_size:
            ratio = member.file_size / max(member.compress_size, 1)
            raise CheckpointError(
                f"{path}: member {shown(member.filename)} inflates {ratio:,.0f}-fold, from "
                f"{_size(member.compress_size)} to {_size(member.file_size)}; tensor data does not compress like "
                f"that (torch.save stores it uncompressed), so the file is refused as a possible zip bomb",
                "AS501",
            )


def _unreadable_header(path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"{path}: not a readable safetensors file ({what})", "AS501")


def _header_bytes(path: Path, header: object) -> int:
    """The tensor bytes a parsed safetensors header declares; each entry must be well formed.

    Raises:
        CheckpointError: (AS501) naming the tensor and what is wrong with its entry.
    """
    if not isinstance(header, dict):
        raise _unreadable_header(path, f"its header is a JSON {_json_kind(header)}, not an object")
    declared = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict):
            raise _unreadable_header(
                path, f"tensor {shown(name)} is described by a JSON {_json_kind(entry)}, not an object"
            )
        dtype, shape = entry.get("dtype"), entry.get("shape")
        if not isinstance(dtype, str):
            raise _unreadable_header(path, f"tensor {shown(name)} has the dtype {shown(dtype)}, not a string")
        if not isinstance(shape, list):
            raise _unreadable_header(path, f"tensor {shown(name)} has the shape {shown(shape)}, not a list")
        for size in shape:
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise _unreadable_header(
                    path,
                    f"tensor {shown(name)} has the size {shown(size)} in its shape; sizes are whole numbers from 0",
                )
        if dtype in _SAFETENSORS_BITS:  # a dtype not listed is left to the reader to judge
            declared += math.prod(shape) * _SAFETENSORS_BITS[dtype] // 8
    return declared


def _json_kind(value: object) -> str:
    """What JSON calls a parsed value's type (an array, a number ...)."""
    kinds = ((dict, "object"), (list, "array"), (str, "string"), (bool, "boolean"), (int | float, "number"))
    return next((kind for cls, kind in kinds if isinstance(value, cls)), "null")


def _check_safetensors(path: Path, limit: int) -> None:
    """Refuse a safetensors file whose header is malformed or declares more tensor bytes than the file or
    memory holds."""
    on_disk = path.stat().st_size
    with path.open("rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
        if on_disk < 8 or not 0 < length <= min(on_disk - 8, MAX_HEADER):
            raise _unreadable_header(path, f"a header of {length:,} bytes declared in a file of {_size(on_disk)}")
        raw = handle.read(length)
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, a number too long, nested too deep
        raise _unreadable_header(path, f"a malformed header: {type(exc).__name__}") from None
    declared = _header_bytes(path, header)
    payload = on_disk - 8 - length
    if declared > payload:
        raise _unreadable_header(
            path, f"its header declares {_size(declared)} of tensors, the file holds {_size(payload)}"
        )
    if declared > limit:
        raise _too_large(path, "declares tensors of", declared, limit)


def check_file(path: str | Path, max_bytes: int | None = None) -> Path:
    """Refuse a checkpoint file that is missing or whose declared tensors would not fit ``max_bytes``
    (default: the memory available now, :func:`archspec.budget.memory_limit`); returns its path.

    Raises:
        CheckpointError: (AS501) naming the file and the numbers.
    """
    path = Path(path)
    try:
        regular, exists = path.is_file(), path.exists()
    except OSError as exc:  # a name too long to look up, say
        raise CheckpointError(f"{path}: cannot read: {exc.strerror}", "AS501") from None
    if not regular:
        raise CheckpointError(f"{path}: {'not a regular file' if exists else 'no such file'}", "AS501")
    limit = budget.memory_limit() if max_bytes is None else max_bytes
    if path.suffix == ".safetensors":
        _check_safetensors(path, limit)
        return path
    with path.open("rb") as handle:
        is_zip = handle.read(4) == b"PK\x03\x04"  # how torch.load tells its zip format from the legacy one
    if is_zip:
        _check_zip(path, limit)
    elif path.stat().st_size > limit:  # the legacy format stores tensors as they are: the file is their size
        raise _too_large(path, "holds", path.stat().st_size, limit)
    return path
