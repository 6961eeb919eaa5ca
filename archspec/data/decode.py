"""Reading one image file with Pillow: its header (cheap), and its pixels at a given size.

What an image holds is kept, not clipped: 8-bit images stay ``uint8``; 16-bit images (modes ``I;16*``,
and ``I`` when every value fits 16 bits) are divided by 65,535 and float images (mode ``F``) must hold
values in [0, 1]; both come back as float32. Palette images go through their palette, CMYK and the
other colour modes become RGB. Alpha is dropped, not composited: the colour channels are used as
stored, as torchvision's ``ImageFolder`` loader does. The EXIF orientation is applied; an animated
image gives its first frame. Only the formats in :data:`FORMATS` are decoded, whatever a file's
suffix, and an image of more than ``max_pixels`` pixels is refused from its header, before decoding.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from archspec.data.errors import DataError
from archspec.data.files import open_regular
from archspec.data.resize import covering, fitted

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
"""File suffixes read as images in a folder; other files are skipped."""
FORMATS = ("BMP", "GIF", "JPEG", "PNG", "PPM", "TIFF", "WEBP")
"""The Pillow formats decoded (JPEG includes multi-picture MPO). Others (EPS, which runs Ghostscript, among them)
are never tried."""
MAX_IMAGE_PIXELS = 2**26
"""The most pixels (height × width) an image may have: 67,108,864, e.g. 8192×8192. A compressed file
can declare far more than its size; this bounds what decoding one image allocates (about 200 MB as RGB)."""
GREY = frozenset({"1", "L", "LA"})
"""8-bit Pillow modes read as one channel."""
DEEP = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
"""Pillow modes of more than 8 bits, read as one float32 channel in [0, 1]."""
_TRANSPOSES = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
"""EXIF orientation → the transpose that shows the image upright (as ``ImageOps.exif_transpose`` does)."""


@dataclass(frozen=True)
class Header:
    """What an image's header says: its upright size and its Pillow mode."""

    height: int
    width: int
    mode: str

    @property
    def grey(self) -> bool:
        return self.mode in GREY or self.mode in DEEP

    @property
    def deep(self) -> bool:
        return self.mode in DEEP


@contextmanager
def _pillow(path: str | Path) -> Iterator[None]:
    """Pillow's errors and warnings as DataErrors naming ``path``; its other warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except DataError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise DataError(f"{path}: refused as a possible decompression bomb ({exc})") from None
        except UnidentifiedImageError:
            raise DataError(
                f"{path}: not a readable image (UnidentifiedImageError: cannot identify image file as "
                f"{', '.join(FORMATS[:-1])} or {FORMATS[-1]})"
            ) from None
        except Exception as exc:  # Pillow's readers raise many kinds of error on damaged data
            raise DataError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") from None


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1 to 8) the header gives, read without decoding the pixels.

    Pillow's PNG reader decodes the whole image to look for EXIF after the pixels; the base method
    reads only what came before them, so the header and the decoded image always agree.
    """
    try:
        value = Image.Image.getexif(image).get(ExifTags.Base.Orientation, 1)
    except Exception:  # a damaged EXIF block: the image is read as stored
        return 1
    return value if isinstance(value, int) and value in _TRANSPOSES else 1


def _header(path: str | Path, image: Image.Image, orientation: int, max_pixels: int) -> Header:
    width, height = image.size
    if width < 1 or height < 1:
        raise DataError(f"{path}: not a readable image (its header gives {height}×{width} pixels)")
    if width * height > max_pixels:
        raise DataError(
            f"{path}: {height:,}×{width:,} pixels (height×width), {width * height:,} in all, more than the "
            f"{max_pixels:,} an image may have (max_pixels); shrink it first"
        )
    if orientation in (5, 6, 7, 8):
        height, width = width, height
    return Header(height, width, image.mode)


@functools.cache
def _convertible(mode: str) -> bool:
    """Whether Pillow converts ``mode`` to grey or RGB (tried once per mode on a 1×1 image)."""
    if mode in GREY or mode in DEEP:
        return True
    try:
        Image.new(mode, (1, 1)).convert("RGB")
    except (ValueError, OSError):
        return False
    return True


def _open(handle: BinaryIO) -> Image.Image:
    Image.init()  # registers the readers of TIFF and WebP too; a no-op after the first call
    return Image.open(handle, formats=FORMATS)


def probe(path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS) -> Header:
    """The header of the image at ``path``: size (upright) and mode, without decoding the pixels."""
    with open_regular(path) as handle, _pillow(path), _open(handle) as image:
        header = _header(path, image, _orientation(image), max_pixels)
    if not _convertible(header.mode):
        raise DataError(f"{path}: image mode {header.mode} cannot be converted to RGB or grey; convert the file first")
    return header


def _draft(image: Image.Image, orientation: int, size: tuple[int, int], resize: str) -> None:
    """Let a JPEG decode at 1/2, 1/4 or 1/8 scale where the result still covers what the resize needs."""
    if image.format not in ("JPEG", "MPO"):
        return
    upright = (image.height, image.width) if orientation not in (5, 6, 7, 8) else (image.width, image.height)
    height, width = covering(upright, size, resize)
    if 2 * height > upright[0] or 2 * width > upright[1]:
        return
    image.draft(None, (width, height) if orientation not in (5, 6, 7, 8) else (height, width))


def _range(path: str | Path, values: np.ndarray, what: str) -> str:
    low, high = values.min(), values.max()
    return f"{path}: {what} run from {low:.6g} to {high:.6g}"


def _plane(path: str | Path, image: Image.Image) -> Image.Image:
    """``image`` as mode L, RGB or F (16-bit and float values in [0, 1])."""
    mode = image.mode
    if mode == "L":
        return image
    if mode in GREY:
        return image.convert("L")
    if mode.startswith("I;16"):
        return Image.fromarray(np.asarray(image, dtype=np.float32) / np.float32(65535))
    if mode == "I":
        values = np.asarray(image)
        if values.min() < 0 or values.max() > 65535:
            raise DataError(
                f"{_range(path, values, '32-bit integer pixel values')}; integer images are read as 16-bit "
                "(0 to 65,535), so these cannot be scaled: save them as 16-bit, or as floats in [0, 1]"
            )
        return Image.fromarray(values.astype(np.float32) / np.float32(65535))
    if mode == "F":
        values = np.asarray(image)
        if not np.isfinite(values).all():
            raise DataError(f"{path}: float pixel values include NaN or infinity")
        if values.min() < 0 or values.max() > 1:
            raise DataError(f"{_range(path, values, 'float pixel values')}; float images must hold values in [0, 1]")
        return image
    try:
        return image.convert("RGB")
    except ValueError as exc:
        raise DataError(f"{path}: image mode {mode} cannot be converted to RGB ({exc})") from None


def _laid_out(array: np.ndarray, channels: int, dtype: str) -> np.ndarray:
    """(H, W) or (H, W, 3) as (C, H, W) with ``channels`` channels, in ``dtype`` (``uint8`` over 255 as float32)."""
    image = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    if image.shape[0] != channels:
        image = np.repeat(image, channels, axis=0)
    if dtype == "float32" and image.dtype == np.uint8:
        return image.astype(np.float32) / np.float32(255)
    return np.ascontiguousarray(image)


def decode(
    path: str | Path,
    header: Header,
    size: tuple[int, int],
    resize: str,
    channels: int,
    dtype: str,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> np.ndarray:
    """The image at ``path`` as (``channels``, *size*) ``uint8`` or float32, resized as ``resize`` says.

    ``header`` is what :func:`probe` found; a file that no longer matches it is refused.
    """
    with open_regular(path) as handle, _pillow(path), _open(handle) as image:
        orientation = _orientation(image)
        found = _header(path, image, orientation, max_pixels)
        if found != header:
            raise DataError(
                f"{path}: changed since the data was scanned ({header.height}×{header.width} {header.mode} → "
                f"{found.height}×{found.width} {found.mode}); scan it again"
            )
        if (found.height, found.width) != size:
            _draft(image, orientation, size, resize)
        image.load()
        upright = image.transpose(_TRANSPOSES[orientation]) if orientation != 1 else image
        array = np.asarray(fitted(_plane(path, upright), size, resize))
    return _laid_out(array, channels, dtype)
