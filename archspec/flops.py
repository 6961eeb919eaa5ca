"""FLOP formulas shared by the planner and by the torch-side counter.

The convention is that of :mod:`torch.utils.flop_counter`: a multiply-accumulate is two FLOPs and only
matrix products and convolutions count (biases, norms, activations and additions do not). On top of that
archspec counts what the counter cannot see: FFTs and complex products. Both the plan and the test-time
counter call the functions below, so the two can only agree or fail loudly.
"""

from __future__ import annotations

import math


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution or pooling window along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


def same_out(size: int, stride: int) -> int:
    """Output length along one axis under TensorFlow's SAME padding: ceil(size / stride)."""
    return -(-size // stride)


def conv2d_flops(in_ch: int, out_ch: int, kernel: int, out_hw: tuple[int, int], groups: int = 1) -> int:
    return 2 * out_hw[0] * out_hw[1] * out_ch * (in_ch // groups) * kernel * kernel


def linear_flops(tokens: int, in_features: int, out_features: int) -> int:
    return 2 * tokens * in_features * out_features


def attention_flops(q_tokens: int, kv_tokens: int, dim: int) -> int:
    """``softmax(q kᵀ) v`` summed over heads: two batched products of q_tokens × kv_tokens × dim."""
    return 4 * q_tokens * kv_tokens * dim


def fft2_plane_flops(height: int, width: int) -> int:
    """One real 2-D FFT (or its inverse) of a height × width plane.

    A real FFT along the width (2.5·n·log2 n) on each row, then a complex FFT along the height
    (5·n·log2 n) on each of the width//2 + 1 kept columns.
    """
    rows = height * 2.5 * width * math.log2(width) if width > 1 else 0.0
    cols = (width // 2 + 1) * 5.0 * height * math.log2(height) if height > 1 else 0.0
    return round(rows + cols)


def complex_mul_flops(elements: int) -> int:
    """Element-wise complex products: four real multiplies and two additions each."""
    return 6 * elements
