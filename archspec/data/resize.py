"""Bringing an image to a given size: ``crop``, ``pad`` or ``stretch``, with Pillow's antialiased bilinear filter.

Pillow widens its filter by the shrink factor, so shrinking is antialiased; ``reducing_gap`` first
reduces by whole factors (box averaging) where an image shrinks more than threefold, which is
faster and, at that gap, indistinguishable from the exact filter.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from archspec.data.errors import DataError

RESIZE_MODES = ("crop", "pad", "stretch")
"""``crop``: scale so the image covers the size, keep the centre (as timm's and torchvision's evaluation
transforms do); ``pad``: scale so it fits inside, centred on zeros; ``stretch``: scale each axis to the size."""
REDUCING_GAP = 3.0
_FILTER = Image.Resampling.BILINEAR


def check_resize(resize: str, source: str) -> None:
    if resize not in RESIZE_MODES:
        raise DataError(f"{source}: resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")


def check_size(size: object, source: str) -> tuple[int, int]:
    """``size`` as (height, width) of positive ints."""
    if (
        not isinstance(size, tuple | list)
        or len(size) != 2
        or not all(isinstance(side, int | np.integer) and not isinstance(side, bool) and side > 0 for side in size)
    ):
        raise DataError(f"{source}: a size is (height, width) in pixels, both positive, got {size!r}")
    return int(size[0]), int(size[1])


def covering(shape: tuple[int, int], size: tuple[int, int], resize: str) -> tuple[int, int]:
    """The (height, width) an image of ``shape`` is scaled to before it is cropped or padded to ``size``."""
    if resize == "stretch":
        return size
    pick = max if resize == "crop" else min
    factor = pick(size[0] / shape[0], size[1] / shape[1])
    if resize == "crop":  # cover the size on both axes
        return max(size[0], math.ceil(shape[0] * factor - 1e-9)), max(size[1], math.ceil(shape[1] * factor - 1e-9))
    return max(1, min(size[0], round(shape[0] * factor))), max(1, min(size[1], round(shape[1] * factor)))


def fitted(image: Image.Image, size: tuple[int, int], resize: str) -> Image.Image:
    """``image`` (mode L, RGB or F) at ``size`` (height, width); unchanged when it already has that size."""
    height, width = size
    if (image.height, image.width) == size:
        return image
    if resize == "stretch":
        return image.resize((width, height), _FILTER, reducing_gap=REDUCING_GAP)
    if resize == "crop":
        factor = max(height / image.height, width / image.width)
        box_width, box_height = min(image.width, width / factor), min(image.height, height / factor)
        left, top = max(0.0, (image.width - box_width) / 2), max(0.0, (image.height - box_height) / 2)
        box = (left, top, left + box_width, top + box_height)  # within the image despite rounding
        return image.resize((width, height), _FILTER, box=box, reducing_gap=REDUCING_GAP)
    inner_height, inner_width = covering((image.height, image.width), size, "pad")
    inner = image
    if (inner_height, inner_width) != (image.height, image.width):
        inner = image.resize((inner_width, inner_height), _FILTER, reducing_gap=REDUCING_GAP)
    canvas = Image.new(image.mode, (width, height))
    canvas.paste(inner, ((width - inner_width) // 2, (height - inner_height) // 2))
    return canvas


def resized_array(image: np.ndarray, size: tuple[int, int], resize: str) -> np.ndarray:
    """One image (C, H, W) of ``uint8`` or float32 at ``size``, channel by channel, in its own dtype."""
    if tuple(image.shape[1:]) == size:
        return image.copy()
    planes = [np.asarray(fitted(Image.fromarray(np.ascontiguousarray(plane)), size, resize)) for plane in image]
    return np.stack(planes).astype(image.dtype, copy=False)
