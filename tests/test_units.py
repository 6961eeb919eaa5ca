"""Byte counts as messages write them."""

import pytest

from archspec.units import memory_size


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (972, "972 bytes"),
        (1023, "1.0 KiB"),
        (1024, "1.0 KiB"),
        (2_250, "2.2 KiB"),
        (2**20 - 1, "1.0 MiB"),
        (2**20, "1.0 MiB"),
        (54 * 2**20, "54.0 MiB"),
        (2**29, "512.0 MiB"),
        (2**30, "1.00 GiB"),
        (60_350_821_542 * 4, "224.82 GiB"),
    ],
)
def test_memory_size_never_reads_as_zero_of_a_larger_unit(count, text):
    assert memory_size(count) == text
