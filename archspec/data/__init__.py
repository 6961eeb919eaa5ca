"""Labelled images for ``archspec fit``: scikit-learn's digits, an image folder, an ``.npz`` file, or arrays.

:func:`scan` reads what is cheap (a folder's file list and image headers, an npz's headers and
labels) into a :class:`Catalog`; :meth:`Catalog.load` decodes every image into memory
(:class:`Images`, ``uint8`` for 8-bit images) and :meth:`Catalog.dataset` decodes them as they are
asked for (a torch ``Dataset``). Bad data is refused with a :class:`DataError` (AS1001) whose message
starts with the file or folder at fault.
"""

from __future__ import annotations

from archspec.data.arrays import MAX_CLASSES, from_arrays
from archspec.data.catalog import Catalog, Images
from archspec.data.decode import IMAGE_SUFFIXES, MAX_IMAGE_PIXELS
from archspec.data.errors import DataError
from archspec.data.resize import RESIZE_MODES
from archspec.data.source import load_images, scan
from archspec.data.split import Split, split

__all__ = [
    "IMAGE_SUFFIXES", "MAX_CLASSES", "MAX_IMAGE_PIXELS", "RESIZE_MODES", "Catalog", "DataError", "Images", "Split",
    "from_arrays", "load_images", "scan", "split",
]  # fmt: skip
