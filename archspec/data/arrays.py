"""Images held as one array: scikit-learn's digits, arrays a library user passes, and the checks an npz's
arrays get too.

``uint8`` images stay ``uint8``; other numbers become float32 as they are (not rescaled). Labels are
integers from 0; without a list of class names, a label must be below the number of images.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from archspec.data.catalog import Catalog, Digest, Reader
from archspec.data.errors import DataError
from archspec.data.resize import resized_array

FIT_EXTRA = "pip install scikit-learn (or pip install -e '.[fit]' in a checkout)"
MAX_CLASSES = 1_000_000
"""The most classes a ``classes`` array may name."""
_BLOCK = 2**24
"""Bytes of images checked or hashed at a time."""


class ArrayReader(Reader):
    """Images from an (N, C, H, W) array in memory, resized per image when another size is asked for."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x

    def read(self, index: int, size: tuple[int, int], resize: str) -> np.ndarray:
        return resized_array(self.x[index], size, resize)

    def stored(self) -> np.ndarray:
        return self.x

    def fingerprint(self, digest: Digest) -> None:
        digest.update(f"{self.x.dtype.str} {self.x.shape}\n".encode())
        for _, block in blocks(self.x):
            digest.update(np.ascontiguousarray(block).data)


def blocks(x: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """``x`` split along its first axis into views of about ``_BLOCK`` bytes, each with its first index."""
    step = max(1, _BLOCK // max(1, x[:1].nbytes))
    for start in range(0, len(x), step):
        yield start, x[start : start + step]


def image_shape(source: str, shape: tuple[int, ...], dtype: np.dtype) -> tuple[int, int, int, int]:
    """``x``'s shape as (N, C, H, W) (N×H×W gets one channel); a DataError unless it holds numbers."""
    if dtype.hasobject or not (np.issubdtype(dtype, np.number) or dtype == np.bool_) or dtype.kind == "c":
        raise DataError(f"{source}: x holds {dtype} values; expected numbers")
    if len(shape) == 3:
        shape = (shape[0], 1, *shape[1:])
    if len(shape) != 4 or min(shape[1:]) < 1:
        raise DataError(f"{source}: x has shape {tuple(shape)}; expected N×C×H×W or N×H×W")
    if shape[0] == 0:
        raise DataError(f"{source}: holds no images")
    return shape[0], shape[1], shape[2], shape[3]


def class_names(source: str, names: np.ndarray) -> tuple[str, ...]:
    flat = names.reshape(-1)
    if len(flat) > MAX_CLASSES:
        raise DataError(f"{source}: classes names {len(flat):,} classes, more than the {MAX_CLASSES:,} allowed")
    if flat.dtype.kind == "S":
        return tuple(name.decode("utf-8", "replace") for name in flat)
    return tuple(str(name) for name in flat)


def check_label_layout(source: str, shape: tuple[int, ...], dtype: np.dtype, count: int) -> None:
    """A DataError unless labels of ``shape`` and ``dtype`` are one integer per image."""
    if len(shape) != 1 or shape[0] != count:
        raise DataError(f"{source}: y has shape {tuple(shape)}; expected one label per image ({count},)")
    if not np.issubdtype(dtype, np.integer):
        raise DataError(f"{source}: y holds {dtype} values; expected integer class labels from 0")


def checked_labels(
    source: str, y: np.ndarray, count: int, classes: Sequence[str] | None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """``y`` as int64 labels of ``count`` images, and the class names (``0``, ``1``... when not given)."""
    check_label_layout(source, y.shape, y.dtype, count)
    if classes is None:
        beyond = np.flatnonzero(y >= count)
        if len(beyond):
            index = int(beyond[0])
            raise DataError(
                f"{source}: label {int(y[index])} of image {index} is not below {count:,}, the number of images: "
                "without a classes array the labels number the classes from 0, so there cannot be more classes "
                "than images (save classes=[...] naming every class to use labels this large)"
            )
        classes = tuple(str(label) for label in range(int(y.max()) + 1 if (y >= 0).any() else 0))
    wrong = np.flatnonzero((y < 0) | (y >= len(classes)))
    if len(wrong):
        index = int(wrong[0])
        raise DataError(
            f"{source}: label {int(y[index])} of image {index} is out of range: labels run from 0 to "
            f"{len(classes) - 1} ({len(classes)} classes)"
        )
    labels = y.astype(np.int64)
    present = np.unique(labels)
    if len(present) < 2:
        raise DataError(f"{source}: every image has label {int(present[0])}: a classifier needs at least 2 classes")
    return labels, tuple(classes)


def check_finite(source: str, x: np.ndarray) -> None:
    """A DataError naming the first image that holds NaN or an infinity (checked a block at a time)."""
    if x.dtype.kind != "f":
        return
    for start, block in blocks(x):
        bad = np.flatnonzero(~np.isfinite(block.reshape(len(block), -1)).all(axis=1))
        if len(bad):
            raise DataError(f"{source}: image {start + int(bad[0])} holds NaN or infinite values")


def as_stored(x: np.ndarray) -> np.ndarray:
    """``x`` as kept: ``uint8`` as it is, other numbers as float32."""
    if x.dtype == np.uint8 or x.dtype == np.float32:
        return np.ascontiguousarray(x)
    return x.astype(np.float32)


def from_arrays(
    x: np.ndarray, y: np.ndarray, classes: Sequence[str] | np.ndarray | None = None, source: str = "arrays"
) -> Catalog:
    """A catalog of images in memory: ``x`` N×C×H×W or N×H×W (``uint8`` kept, other numbers as float32)
    and integer labels ``y`` from 0; ``classes`` names the classes (and so fixes their number)."""
    x, y = np.asarray(x), np.asarray(y)
    count, channels, height, width = image_shape(source, x.shape, x.dtype)
    names = None if classes is None else class_names(source, np.asarray(classes))
    labels, names = checked_labels(source, y, count, names)
    stored = as_stored(x.reshape(count, channels, height, width))
    check_finite(source, stored)
    return array_catalog(source, "arrays", stored, labels, names)


def array_catalog(source: str, kind: str, x: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]) -> Catalog:
    sizes = np.broadcast_to(np.array(x.shape[2:], dtype=np.int64), (len(x), 2))
    return Catalog(source, kind, classes, labels, int(x.shape[1]), sizes, str(x.dtype), ArrayReader(x))


def digits(source: str = "digits") -> Catalog:
    """scikit-learn's bundled 1,797 handwritten digits (8×8, 17 grey levels), float32 divided by 16."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError(f"{source}: the bundled digits come with scikit-learn: {FIT_EXTRA}") from None
    bunch = load_digits()
    x = (np.asarray(bunch.images, dtype=np.float32) / 16.0)[:, None]
    labels = np.asarray(bunch.target, dtype=np.int64)
    return array_catalog(source, "digits", np.ascontiguousarray(x), labels, tuple(str(d) for d in range(10)))
