"""Labelled images for ``archspec fit``: scikit-learn's digits, an image folder, or an ``.npz`` file.

Everything here is numpy: images come back as one float32 array of shape (N, C, H, W) with values
as stored (``uint8`` scaled to [0, 1]) and int64 labels from 0. Bad data is refused with a
:class:`DataError` that names the file (and the image, key or label) at fault, before any training.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archspec.errors import ArchspecError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
"""File suffixes read as images in a folder; other files are skipped."""

GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
"""Pillow modes read as one channel; every other mode is converted to RGB."""

FIT_EXTRA = "pip install 'archspec[fit]'"


class DataError(ArchspecError):
    """Training data that cannot be used: the message starts with the file (or folder) at fault."""

    code = "AS1001"


@dataclass(frozen=True)
class Images:
    """Labelled images: ``x`` (N, C, H, W) float32, ``y`` (N,) int64 in ``range(len(classes))``."""

    x: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    source: str

    @property
    def channels(self) -> int:
        return int(self.x.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.x.shape[2]), int(self.x.shape[3])

    def describe(self) -> str:
        height, width = self.size
        return f"{self.source}: {len(self.y):,} images of {self.channels}×{height}×{width}, {len(self.classes)} classes"


def load_images(source: str | Path) -> Images:
    """``"digits"``, a folder of class subfolders, or an ``.npz`` file with arrays ``x`` and ``y``."""
    text = str(source)
    if text == "digits":
        return digits()
    path = Path(text)
    if path.is_dir():
        return image_folder(path)
    if path.suffix == ".npz":
        return npz_file(path)
    choices = "--data takes digits, a folder of class subfolders or a .npz file"
    if not path.exists():
        raise DataError(f"{path}: no such file or folder ({choices})")
    raise DataError(f"{path}: not a folder or a .npz file ({choices})")


def digits() -> Images:
    """scikit-learn's bundled 1,797 handwritten digits (8×8, 17 grey levels), scaled to [0, 1]."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError(f"digits: the bundled digits come with scikit-learn: {FIT_EXTRA}") from None
    bunch = load_digits()
    x = (np.asarray(bunch.images, dtype=np.float32) / 16.0)[:, None]
    return _checked(x, np.asarray(bunch.target, dtype=np.int64), tuple(str(d) for d in range(10)), "digits")


def image_folder(root: Path) -> Images:
    """One subfolder per class (sorted by name), each holding images of one size, read with Pillow."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise DataError(f"{root}: reading image folders needs Pillow: {FIT_EXTRA}") from None
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = {folder.name: _image_files(folder) for folder in folders}
    files = {name: paths for name, paths in files.items() if paths}
    if not files:
        raise DataError(
            f"{root}: no images found: expected one subfolder per class holding image files "
            f"({', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    arrays, labels, first = [], [], None
    gray = True
    for paths in files.values():
        for path in paths:
            try:
                with Image.open(path) as image:
                    image.load()
                    gray = gray and image.mode in GRAY_MODES
            except (UnidentifiedImageError, OSError, ValueError) as exc:
                raise DataError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") from None
    for label, paths in enumerate(files.values()):
        for path in paths:
            with Image.open(path) as image:
                array = np.asarray(image.convert("L" if gray else "RGB"), dtype=np.uint8)
            if first is None:
                first = (path, array.shape[:2])
            elif array.shape[:2] != first[1]:
                (h0, w0), (h, w) = first[1], array.shape[:2]
                raise DataError(
                    f"{path}: {h}×{w} pixels, but {first[0]} has {h0}×{w0}: every image must have one size "
                    "(resize them first; fit scales the common size to the model's input)"
                )
            arrays.append(array[None] if gray else array.transpose(2, 0, 1))
            labels.append(label)
    x = np.stack(arrays).astype(np.float32) / 255.0
    return _checked(x, np.asarray(labels, dtype=np.int64), tuple(files), str(root))


def _image_files(folder: Path) -> list[Path]:
    found = (p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    return sorted(p for p in found if p.is_file())


def npz_file(path: Path) -> Images:
    """Arrays ``x`` (N×C×H×W or N×H×W; uint8 is scaled to [0, 1]) and integer ``y``; ``classes`` (names) optional."""
    try:
        with path.open("rb") as handle, np.load(handle, allow_pickle=False) as archive:
            keys = set(archive.files)
            missing = [key for key in ("x", "y") if key not in keys]
            if missing:
                found = ", ".join(sorted(keys)) or "none"
                raise DataError(f"{path}: missing array {' and '.join(missing)} (found: {found}); expected x, y")
            x, y = archive["x"], archive["y"]
            names = archive["classes"] if "classes" in keys else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})") from None
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise DataError(f"{path}: x has shape {x.shape}; expected N×C×H×W or N×H×W")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{path}: y has shape {y.shape}; expected one label per image ({len(x)},)")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: y holds {y.dtype} values; expected integer class labels from 0")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_) or np.iscomplexobj(x):
        raise DataError(f"{path}: x holds {x.dtype} values; expected numbers")
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    pixels = x.astype(np.float32) / np.float32(scale)
    if names is not None:
        classes = tuple(str(name) for name in np.asarray(names).reshape(-1))
    else:
        classes = tuple(str(label) for label in range(int(y.max()) + 1 if len(y) else 0))
    return _checked(pixels, y.astype(np.int64), classes, str(path))


def _checked(x: np.ndarray, y: np.ndarray, classes: Sequence[str], source: str) -> Images:
    if len(x) == 0:
        raise DataError(f"{source}: holds no images")
    wrong = np.flatnonzero((y < 0) | (y >= len(classes)))
    if len(wrong):
        index = int(wrong[0])
        raise DataError(
            f"{source}: label {int(y[index])} of image {index} is out of range: labels run from 0 to "
            f"{len(classes) - 1} ({len(classes)} classes)"
        )
    present = np.unique(y)
    if len(present) < 2:
        raise DataError(f"{source}: every image has label {int(present[0])}: a classifier needs at least 2 classes")
    if not np.isfinite(x).all():
        index = int(np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))[0])
        raise DataError(f"{source}: image {index} holds NaN or infinite values")
    return Images(np.ascontiguousarray(x, dtype=np.float32), y, tuple(classes), source)


@dataclass(frozen=True)
class Split:
    """Indices of the training and validation images, drawn once from ``seed``."""

    train: np.ndarray
    val: np.ndarray
    seed: int

    def describe(self) -> str:
        return f"split: {len(self.train):,} train / {len(self.val):,} validation (seed {self.seed})"


def split(images: Images, val_fraction: float = 0.2, seed: int = 0) -> Split:
    """A seeded, stratified split: each class gives ``val_fraction`` of its images (at least one) to validation."""
    if not 0 < val_fraction < 1:
        raise DataError(f"{images.source}: the validation fraction must be between 0 and 1, got {val_fraction}")
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in range(len(images.classes)):
        members = np.flatnonzero(images.y == label)
        if len(members) == 0:
            continue
        members = rng.permutation(members)
        count = min(len(members) - 1, max(1, round(len(members) * val_fraction)))
        val.append(members[:count])
        train.append(members[count:])
    if not sum(len(v) for v in val):
        raise DataError(f"{images.source}: every class has one image: nothing is left for validation")
    return Split(np.sort(np.concatenate(train)), np.sort(np.concatenate(val)), seed)
