"""Writing output files safely: whole or not at all, and never over an existing file unless asked."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import secrets
import stat
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO, cast

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


class OutputError(ArchspecError):
    """An output cannot be written: its folder is missing or read-only, the destination is not a
    regular file, or the write itself failed (a full disk, a file too large)."""

    code = "AS603"


class OutputExistsError(OutputError):
    """The target file exists and overwriting it was not asked for."""

    code = "AS602"


STALE_AFTER = 300.0
"""Seconds a temporary file of a dead writer stays untouched before a later write removes it.

The wait spares a writer whose process id this machine cannot see (another container writing to
a shared folder), which would otherwise look dead."""

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _why(errno_: int, folder: Path) -> str:
    """The OS reason for ``errno_``, with what it means for a file written into ``folder``."""
    reason = os.strerror(errno_)
    context = {
        errno.ENOENT: f"the folder {folder} does not exist",
        errno.ENOTDIR: f"{folder} is not a folder",
        errno.EACCES: f"the folder {folder} is not writable",
        errno.EPERM: f"the folder {folder} is not writable",
        errno.EROFS: f"the folder {folder} is on a read-only file system",
    }.get(errno_)
    return f"{reason} ({context})" if context else reason


def _read_only(folder: Path) -> bool:
    """Whether ``folder`` is on a file system mounted read-only (which even root cannot write)."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):  # no statvfs on this platform, or the file system does not say
        return False


def check_destination(path: str | Path, force: bool = False) -> Path:
    """Refuse, before any work, a destination that cannot or must not be written.

    The folder must exist and be writable; the destination must not exist, or with ``force`` be a
    regular file (a directory, symbolic link, device, FIFO or socket is never replaced).

    Raises:
        OutputExistsError: ``path`` is a regular file and ``force`` is not set.
        OutputError: anything else that would make the write fail.
    """
    path = Path(path)
    folder = path.parent
    try:
        folder_mode = os.stat(folder).st_mode
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {_why(exc.errno or errno.EIO, folder)}") from None
    if not stat.S_ISDIR(folder_mode):
        raise OutputError(f"cannot write {path}: {_why(errno.ENOTDIR, folder)}")
    try:
        mode: int | None = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {_why(exc.errno or errno.EIO, folder)}") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise OutputError(f"cannot write {path}: it is {_kind(mode)}; only a regular file is ever replaced")
    if mode is not None and not force:
        raise OutputExistsError(f"{path} exists; pass --force to overwrite it")
    if _read_only(folder):
        raise OutputError(f"cannot write {path}: {_why(errno.EROFS, folder)}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: {_why(errno.EACCES, folder)}")
    return path


def _temp_pattern(path: Path, suffix: str) -> re.Pattern[str]:
    """Names of the temporary files written for ``path``: ``.NAME.PID.TOKEN.tmp[SUFFIX]``."""
    return re.compile(rf"\.{re.escape(path.name)}\.(?P<pid>\d+)\.[0-9a-f]{{8}}\.tmp(?:{re.escape(suffix)})?")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except (OverflowError, OSError):
        return False  # no process has such an id
    return True


def sweep_stale(path: str | Path, suffix: str = "") -> list[Path]:
    """Remove the temporary files left beside ``path`` by writers that died; returns those removed.

    Only regular files named as this module names them for ``path`` are considered, and only when
    the process that wrote one is gone and the file has not changed for :data:`STALE_AFTER` seconds.
    """
    path = Path(path)
    pattern = _temp_pattern(path, suffix)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None or int(match["pid"]) == os.getpid() or _alive(int(match["pid"])):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(info.st_mode) and time.time() - info.st_mtime >= STALE_AFTER:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue  # gone already, or not ours to remove
    return removed


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _temp_name(path: Path, suffix: str) -> Path:
    return path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp{suffix}"


_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS}


def _publish(temp: Path, path: Path, force: bool) -> None:
    """Move the finished ``temp`` to ``path``; without ``force``, only if nobody created ``path`` meanwhile."""
    if force:
        os.replace(temp, path)
        return
    lost = OutputExistsError(f"{path} exists (it appeared while this file was written); pass --force to overwrite it")
    try:
        os.link(temp, path)  # fails if the name is taken, so of two writers only one publishes
    except FileExistsError:
        raise lost from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        _publish_by_claim(temp, path, lost)
        return
    os.unlink(temp)


def _publish_by_claim(temp: Path, path: Path, lost: OutputExistsError) -> None:
    """On a file system without hard links: claim the name exclusively, then move the file over the claim."""
    try:
        claim = os.open(path, _CREATE, 0o666)
    except FileExistsError:
        raise lost from None
    try:
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # remove the empty claim, unless someone replaced it meanwhile
            if os.path.samestat(os.fstat(claim), os.lstat(path)):
                os.unlink(path)
        raise
    finally:
        os.close(claim)


class _Sink:
    """The file handed to a writer, remembering the first exception its writes raised.

    torch's checkpoint writer turns an exception raised inside ``write`` (a full disk, or the
    KeyboardInterrupt of Ctrl-C or SIGTERM) into a RuntimeError about the zip position; the caller
    raises the original instead. Once a write failed, every later one fails at once.
    """

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.failure: BaseException | None = None

    def write(self, data: bytes) -> int:
        if self.failure is not None:
            raise self.failure
        try:
            return self.handle.write(data)
        except BaseException as exc:
            self.failure = exc
            raise

    def flush(self) -> None:
        self.handle.flush()


def _write_through(path: Path, force: bool, suffix: str, fill: Callable[[Path, int], None]) -> Path:
    """Check ``path``, sweep stale temporary files, let ``fill(temp, fd)`` write a temporary file, publish it."""
    path = check_destination(path, force)
    sweep_stale(path, suffix)
    temp: Path | None = None
    try:
        for _ in range(100):
            # Named before it is created: a signal that lands just after the creation still finds
            # the name to remove.
            temp = _temp_name(path, suffix)
            try:
                fd = os.open(temp, _CREATE, 0o666)  # the mode a plain open() gives: 0666 less the umask
                break
            except FileExistsError:
                temp = None  # another writer's file
        if temp is None:
            raise FileExistsError(errno.EEXIST, "no free name for a temporary file", str(path.parent))
        if force and path.is_file():  # a replaced file keeps its mode, as a plain open() would
            os.fchmod(fd, stat.S_IMODE(path.stat().st_mode))
        fill(temp, fd)
        _publish(temp, path, force)
    except OSError as exc:
        _discard(temp)
        raise OutputError(f"cannot write {path}: {_why(exc.errno or errno.EIO, path.parent)}") from None
    except BaseException:
        _discard(temp)
        raise
    return path


def _discard(temp: Path | None) -> None:
    if temp is not None:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)


def write_atomic(path: str | Path, write: Callable[[BinaryIO], object], force: bool = False) -> Path:
    """Call ``write`` on a temporary file beside ``path``, then move it into place.

    The destination is checked first (:func:`check_destination`). An interrupted or failing
    ``write`` leaves no partial file behind; an existing ``path`` is only replaced when ``force`` is
    set, and without it a file that appears at ``path`` during the write is not replaced either.
    The file gets the mode a plain ``open()`` would give it: 0666 less the umask, or the mode of the
    file it replaces.

    Raises:
        OutputExistsError: ``path`` exists (or appeared meanwhile) and ``force`` is not set.
        OutputError: the destination cannot be written, or a write failed (the OS reason is given).
    """

    def fill(temp: Path, fd: int) -> None:
        with os.fdopen(fd, "wb") as handle:
            sink = _Sink(handle)
            try:
                write(cast(BinaryIO, sink))
                handle.flush()
            except BaseException:
                if sink.failure is not None:
                    raise sink.failure from None
                raise
            os.fsync(handle.fileno())

    return _write_through(Path(path), force, "", fill)


def write_text_atomic(path: str | Path, text: str, force: bool = False) -> Path:
    """:func:`write_atomic` for text, encoded as UTF-8."""
    return write_atomic(path, lambda handle: handle.write(text.encode()), force)


def write_file_atomic(path: str | Path, write: Callable[[Path], object], force: bool = False, suffix: str = "") -> Path:
    """:func:`write_atomic` for writers that take a file name (``torch.export.save``, ONNX's ``save``).

    ``write(temp)`` writes the temporary file and may check it: whatever it raises keeps the file
    from being published. ``suffix`` ends the temporary file's name, for writers that insist on one.
    """

    def fill(temp: Path, fd: int) -> None:
        mode = os.fstat(fd).st_mode & 0o7777
        os.close(fd)
        write(temp)
        os.chmod(temp, mode)  # the writer may have made the file anew, with its own mode
        with open(temp, "rb") as handle:
            os.fsync(handle.fileno())

    return _write_through(Path(path), force, suffix, fill)


class _GuardedStdout(io.TextIOWrapper):
    """stdout whose failed writes (a full disk, a vanished terminal) raise :class:`OutputError`.

    A broken pipe stays a BrokenPipeError: the reader went away, which is no error of ours.
    """

    def write(self, text: str) -> int:
        try:
            return super().write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise self._lost(exc) from None

    def flush(self) -> None:
        try:
            super().flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise self._lost(exc) from None

    def _lost(self, exc: OSError) -> OutputError:
        # What is still buffered can never arrive; send it nowhere, so the flush at exit stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self.fileno())
        os.close(devnull)
        return OutputError(f"cannot write to stdout: {exc.strerror or exc}")


def guard_stdout() -> None:
    """Make a failed write to stdout an :class:`OutputError`, so it is reported like any other."""
    stream = sys.stdout
    if not isinstance(stream, io.TextIOWrapper) or isinstance(stream, _GuardedStdout):
        return
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return
    stream.flush()
    sys.stdout = _GuardedStdout(
        open(fd, "wb", closefd=False),  # noqa: SIM115 - it lives as long as the process
        encoding=stream.encoding,
        errors=stream.errors,
        line_buffering=stream.line_buffering,
        write_through=stream.write_through,
    )


def _identity(path: Path) -> tuple[Path, tuple[int, int] | None]:
    """A path as the file system sees it: its resolved name, and its device and inode where it exists."""
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):  # a symbolic-link loop
        resolved = path.absolute()
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return resolved, None
    return resolved, (info.st_dev, info.st_ino)


def _same(a: tuple[Path, tuple[int, int] | None], b: tuple[Path, tuple[int, int] | None]) -> bool:
    return a[0] == b[0] or (a[1] is not None and a[1] == b[1])


def check_paths(
    outputs: Mapping[str, str | Path | None],
    inputs: Mapping[str, str | Path | None] | None = None,
    force: bool = False,
    replaces: Mapping[str, str] | None = None,
) -> None:
    """Refuse, before any work, outputs that would destroy a file the run needs or another output.

    Each output is checked with :func:`check_destination`, then against every other output and
    every input, by resolved name and by device and inode (so a hard link or a symbolic link to
    the same file is caught); an output inside an input folder is refused too. ``replaces`` names
    the outputs that may be the same file as one input (``{"--save": "--resume"}``: a run
    continued in place); such an output is replaced only when the new file is complete.

    Args:
        outputs, inputs: option name → path (None for an option not given).

    Raises:
        OutputError: naming both options and the file.
        OutputExistsError: an output exists and ``force`` is not set.
    """
    given_out = {name: Path(path) for name, path in outputs.items() if path is not None}
    given_in = {name: Path(path) for name, path in (inputs or {}).items() if path is not None}
    seen: dict[str, tuple[Path, tuple[int, int] | None]] = {}
    for name, path in given_out.items():
        here = _identity(path)
        for other, there in seen.items():
            if _same(here, there):
                raise OutputError(f"{other} and {name} both name {path}: give each output its own file")
        seen[name] = here
        kept = (replaces or {}).get(name)
        in_place = kept in given_in and _same(here, _identity(given_in[kept]))
        for source, source_path in given_in.items():
            there = _identity(source_path)
            if _same(here, there):
                if source == kept:
                    continue
                raise OutputError(
                    f"{name} {path} is the {source} file: writing it would destroy what the run reads; "
                    "give another file name"
                )
            if there[0] in here[0].parents and source_path.is_dir():
                raise OutputError(
                    f"{name} {path} lies inside the {source} folder {source_path}: the output would become "
                    "part of the input; write it elsewhere"
                )
        check_destination(path, force or in_place)
