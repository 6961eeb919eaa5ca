"""Process settings that make CPU inference faster without changing any result.

glibc's ``malloc`` serves large blocks with fresh pages from ``mmap`` and hands them back to the
kernel when they are freed. Its threshold starts at 128 KiB and never rises above 32 MiB, so every
forward pass of a vision model asks the kernel for its big activations again, and the kernel zeroes
each page on first touch. For SpectFormer-H-S at batch 8 on two cores that page-fault work was about
a third of the forward time. :func:`retain_freed_memory` raises the thresholds so freed blocks stay
in the process and are reused: the same trade jemalloc and tcmalloc make, at the cost of a resident
set that stays at its peak.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import platform

# mallopt(3) parameter numbers from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 1 << 30  # blocks below 1 GiB come from the heap and are reused after free
TRIM_THRESHOLD = (1 << 31) - 1  # give freed heap memory back only beyond 2 GiB of free space

_retained = False


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def retain_freed_memory() -> bool:
    """Keep freed memory for reuse instead of returning it to the OS (glibc only; idempotent).

    Returns True when the setting is in force, False where the C library is not glibc. It lasts
    for the rest of the process and affects every allocation, not only torch's.
    """
    global _retained
    if _retained:
        return True
    libc = _libc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _retained = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _retained


def freed_memory_retained() -> bool:
    """Whether :func:`retain_freed_memory` has taken effect in this process."""
    return _retained


def release_free_memory() -> bool:
    """Hand the memory that is free right now back to the OS (glibc's ``malloc_trim``); False elsewhere.

    Peak-memory measurements call this first, so memory kept by :func:`retain_freed_memory` for
    earlier work does not count towards the next measurement.
    """
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    libc.malloc_trim(0)
    return True


def cpu_has_native_bfloat16() -> bool:
    """Whether oneDNN has native bfloat16 kernels on this CPU (AVX512-BF16 or AMX); torch is imported.

    Without them, bfloat16 autocast on the CPU falls back to slow reference kernels: a ResNet-18
    forward pass at batch 8 took 30 times as long as in float32 on an AVX2-only machine.
    """
    import torch

    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())  # type: ignore[no-untyped-call]


def bfloat16_warning(device: str) -> str | None:
    """The warning to give before bfloat16 work on ``device``, or None when there is nothing to say."""
    if device != "cpu" or cpu_has_native_bfloat16():
        return None
    return (
        "this CPU has no native bfloat16 kernels (no AVX512-BF16 or AMX), so bfloat16 autocast runs "
        "several times slower than float32 here"
    )
