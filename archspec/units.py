"""Byte counts for people. Torch-free."""

from __future__ import annotations


def memory_size(count: float) -> str:
    """``count`` bytes in the largest binary unit it reaches: ``1.50 GiB``, ``54.0 MiB``, ``24.0 KiB``,
    ``512 bytes``. Sizes under a GiB keep one decimal, so a small size never reads as 0.00 GiB."""
    for unit, scale, digits in (("GiB", 2**30, 2), ("MiB", 2**20, 1), ("KiB", 2**10, 1)):
        if round(count / scale, digits) >= 1:  # 1,048,575 bytes is 1.0 MiB, not 1024.0 KiB
            return f"{count / scale:.{digits}f} {unit}"
    whole = round(count)
    return "1 byte" if whole == 1 else f"{whole:,} bytes"
