"""What a data source holds (:class:`Catalog`, read cheaply by :func:`archspec.data.scan`) and the images
it loads into memory (:class:`Images`)."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from archspec import budget
from archspec.data.errors import DataError
from archspec.data.resize import check_resize, check_size
from archspec.weights_file import _size

if TYPE_CHECKING:
    import torch
    from torch.utils.data import Dataset

KINDS = ("digits", "folder", "npz", "arrays")


class Digest(Protocol):
    """A hash being fed (``hashlib.sha256()``)."""

    def update(self, data: bytes | memoryview, /) -> None: ...


class Reader(ABC):
    """How one kind of source turns an image's index into its pixels."""

    @abstractmethod
    def read(self, index: int, size: tuple[int, int], resize: str) -> np.ndarray:
        """Image ``index`` as (C, *size*) in the catalog's dtype."""

    def stored(self) -> np.ndarray | None:
        """Every image at its stored size, when the source keeps them as one array in memory."""
        return None

    def ready(self) -> Reader:
        """A reader whose :meth:`read` works in any process: this one, or (npz) one holding the arrays read."""
        return self

    def name(self, index: int) -> str:
        return f"image {index}"

    @abstractmethod
    def fingerprint(self, digest: Digest) -> None:
        """Feed ``digest`` what identifies the pixels: the array bytes, or a folder's files."""


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def size_text(sizes: np.ndarray) -> str:
    """``8×8 (height×width)``, or ``37 sizes from 31×40 to 640×480 (height×width)``, smallest to largest by area."""
    distinct = np.unique(sizes, axis=0)
    if len(distinct) == 1:
        return f"{distinct[0, 0]}×{distinct[0, 1]} (height×width)"
    order = np.lexsort((distinct[:, 1], distinct[:, 0], distinct[:, 0] * distinct[:, 1]))
    small, large = distinct[order[0]], distinct[order[-1]]
    return f"{len(distinct):,} sizes from {small[0]}×{small[1]} to {large[0]}×{large[1]} (height×width)"


def describe_data(source: str, sizes: np.ndarray, channels: int, classes: int, skipped: int) -> str:
    text = (
        f"{source}: {plural(len(sizes), 'image')}, {size_text(sizes)}, {plural(channels, 'channel')}, "
        f"{classes:,} class{'' if classes == 1 else 'es'}"
    )
    return text + (f"; {plural(skipped, 'other file')} skipped" if skipped else "")


@dataclass(frozen=True)
class Images:
    """Labelled images in memory: ``x`` (N, C, H, W) ``uint8`` (0 to 255) or float32, ``y`` (N,) int64 in
    ``range(len(classes))``."""

    x: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    source: str
    skipped: int = 0
    """Files in the source folder that are not images."""

    @property
    def labels(self) -> np.ndarray:
        return self.y

    @property
    def scale(self) -> float:
        """What ``x`` is divided by to bring it to [0, 1]: 255 for ``uint8``, else 1."""
        return 255.0 if self.x.dtype == np.uint8 else 1.0

    @property
    def channels(self) -> int:
        return int(self.x.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return int(self.x.shape[2]), int(self.x.shape[3])

    def describe(self) -> str:
        sizes = np.broadcast_to(np.array(self.size, dtype=np.int64), (len(self.y), 2))
        return describe_data(self.source, sizes, self.channels, len(self.classes), self.skipped)


@dataclass(frozen=True, eq=False)
class Catalog:
    """A data source as :func:`archspec.data.scan` found it: labels, classes and sizes, no pixels yet.

    ``sizes`` is (N, 2) (height, width) per image; ``dtype`` is what :meth:`load` and :meth:`dataset`
    give: ``"uint8"`` (0 to 255, to be divided by 255) or ``"float32"`` (values as the source holds them,
    [0, 1] for image files).
    """

    source: str
    kind: str
    classes: tuple[str, ...]
    labels: np.ndarray
    channels: int
    sizes: np.ndarray
    dtype: str
    reader: Reader = field(repr=False)
    """How the pixels are read: one kind of :class:`Reader` per kind of source."""
    skipped: int = 0
    """Files in the folder that are not images (hidden files aside)."""

    @property
    def size(self) -> tuple[int, int] | None:
        """The (height, width) every image has, or None when sizes differ."""
        if len(self.sizes) and (self.sizes == self.sizes[0]).all():
            return int(self.sizes[0, 0]), int(self.sizes[0, 1])
        return None

    def describe(self) -> str:
        return describe_data(self.source, self.sizes, self.channels, len(self.classes), self.skipped)

    def _target(self, size: tuple[int, int] | None) -> tuple[int, int]:
        """``size`` checked, or the common size; a DataError naming two images when sizes differ."""
        if size is not None:
            return check_size(size, self.source)
        common = self.size
        if common is not None:
            return common
        first = self.sizes[0]
        other = int(np.flatnonzero((self.sizes != first).any(axis=1))[0])
        (h0, w0), (h, w) = first, self.sizes[other]
        raise DataError(
            f"{self.reader.name(other)}: {h}×{w} pixels, but {self.reader.name(0)} has {h0}×{w0}: every image must "
            f"have one size, or a size must be given to scale them to (fit's --size, with --resize crop, pad or "
            f"stretch); {self.describe()}"
        )

    def stored_bytes(self, size: tuple[int, int] | None) -> int:
        """The bytes :meth:`load` at ``size`` holds: N × C × H × W × the item size of :attr:`dtype`."""
        height, width = self._target(size)
        return len(self.labels) * self.channels * height * width * np.dtype(self.dtype).itemsize

    def load(self, size: tuple[int, int] | None = None, resize: str = "crop") -> Images:
        """Every image decoded into memory at ``size`` (None: the common size), resized as ``resize`` says.

        Images are decoded one at a time into the result, so the peak is the result plus one image; a
        result larger than the memory available is refused first. Arrays (npz, digits, from_arrays) at
        their stored size come back as they are (not copied); at another size they are resized channel
        by channel with the same modes.
        """
        check_resize(resize, self.source)
        target = self._target(size)
        as_stored = self.kind != "folder" and target == self.size
        if not as_stored:  # a new array: checked before anything is read
            needed, limit = self.stored_bytes(target), budget.memory_limit()
            if needed > limit:
                raise DataError(
                    f"{self.source}: {len(self.labels):,} images of {self.channels}×{target[0]}×{target[1]} "
                    f"{self.dtype} take {_size(needed)}, more than the {_size(limit)} of memory available; give a "
                    "smaller size, or stream them (Catalog.dataset)"
                )
        reader = self.reader.ready()
        stored = reader.stored()
        if as_stored and stored is not None:
            x = stored
        else:
            x = np.empty((len(self.labels), self.channels, *target), dtype=self.dtype)
            for index in range(len(x)):
                x[index] = reader.read(index, target, resize)
        return Images(x, self.labels, self.classes, self.source, self.skipped)

    def dataset(
        self, indices: np.ndarray, size: tuple[int, int], resize: str = "crop"
    ) -> Dataset[tuple[torch.Tensor, int]]:
        """The images at ``indices``, decoded as they are asked for: ``(C×H×W tensor, label)`` items.

        Picklable, so a ``DataLoader`` with worker processes can use it.
        """
        from archspec.data.stream import ImageStream

        check_resize(resize, self.source)
        target = check_size(size, self.source)
        chosen = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(chosen) and (chosen.min() < 0 or chosen.max() >= len(self.labels)):
            raise DataError(f"{self.source}: indices run from 0 to {len(self.labels) - 1}")
        return ImageStream(self.reader.ready(), chosen, self.labels, target, resize)

    def fingerprint(self) -> str:
        """16 hex digits that change when the data does: a folder's file names, byte sizes, modification times
        and labels (not its pixels); the bytes and shapes of arrays."""
        digest = hashlib.sha256(f"{self.kind} {self.channels} {self.dtype}\n".encode())
        digest.update("\0".join(self.classes).encode("utf-8", "surrogateescape"))
        digest.update(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes())
        self.reader.fingerprint(digest)
        return digest.hexdigest()[:16]
