"""Count a built module's FLOPs with ``torch.utils.flop_counter``, plus what it cannot see.

The stock counter knows matrix products, convolutions and the CUDA attention kernels. This module
adds the real and inverse FFTs, complex element-wise products and the CPU attention kernel, using
the same formulas as the planner (:mod:`archspec.flops`), so counted and planned FLOPs are
comparable exactly.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from archspec.flops import complex_mul_flops, fft2_plane_flops

aten = torch.ops.aten


def _plane(shape: tuple[int, ...], dims: list[int], last: int) -> tuple[int, int, int]:
    """(planes, height, width) of a 1-D or 2-D transform over ``dims``; ``last`` is the real length."""
    dims = [d % len(shape) for d in dims]
    planes = math.prod(size for axis, size in enumerate(shape) if axis not in dims)
    height = shape[dims[0]] if len(dims) == 2 else 1
    return planes, height, last


def _rfft(x: tuple[int, ...], dim: list[int], *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    if len(dim) > 2:
        raise NotImplementedError("FLOPs of FFTs over more than two axes are not modelled")
    planes, height, width = _plane(x, dim, x[dim[-1]])
    return planes * fft2_plane_flops(height, width)


def _irfft(x: tuple[int, ...], dim: list[int], normalization: int, last_dim_size: int, **kwargs: Any) -> int:
    if len(dim) > 2:
        raise NotImplementedError("FLOPs of FFTs over more than two axes are not modelled")
    planes, height, width = _plane(x, dim, last_dim_size)
    return planes * fft2_plane_flops(height, width)


def _complex_mul(*args: Any, out_val: Any = None, **kwargs: Any) -> int:
    if isinstance(out_val, torch.Tensor) and out_val.is_complex():
        return complex_mul_flops(out_val.numel())
    return 0


_complex_mul._get_raw = True  # type: ignore[attr-defined]  # the counter then passes tensors, not shapes


def _sdpa_cpu(query: Any, key: Any, value: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    return int(sdpa_flop_count(query, key, value))  # type: ignore[no-untyped-call]


CUSTOM_FLOPS: dict[Any, Any] = {
    aten._fft_r2c: _rfft,
    aten._fft_c2r: _irfft,
    aten.mul: _complex_mul,
    aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu,
}


def flop_counter() -> FlopCounterMode:
    """A silent ``FlopCounterMode`` that also counts FFTs, complex products and CPU attention."""
    return FlopCounterMode(display=False, custom_mapping=CUSTOM_FLOPS)
