"""A Linear over tokens through MKL's matrix product or oneDNN's 1×1 convolution, whichever is faster.

A Linear over (B, N, C) tokens is one matrix product of B·N rows, which torch runs as MKL's
``addmm``. oneDNN runs the same product as a 1×1 convolution over the tokens viewed as a
channels-last (B, C, N, 1) grid. Which is faster depends on the CPU and on the shape: on a 2-core
Intel Xeon with AVX512, oneDNN ran a 40 → 160 channel layer over 8 × 3136 tokens 1.4× as fast as
MKL, yet ConvNeXt-Atto at batch 1 with every Linear sent to oneDNN took 1.17× as long. So the
first call for each shape (rows, channels in and out, bias) times both, five calls each in
alternation, and oneDNN serves that shape for the rest of the process only if its best time was
under :data:`MARGIN` of MKL's, much as cuDNN's benchmark mode picks among convolution algorithms.
Both compute the same sums in another order: their outputs agree to float32 rounding.

The choice is made only where :mod:`archspec.nn.conv_act` fuses a conv with its GELU (inference
mode, plain float32 CPU tensors, a plain ``nn.Linear``, nothing watching the operators) and for
products of at least :data:`MIN_MACS` multiply-adds; everywhere else the Linear is called as a
module. ``set_autotune(False)`` turns the choice off for the process.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from archspec.nn.conv_act import plain_module, plain_weight, pointwise, unwatched

MIN_MACS = 1 << 22
"""Products smaller than this (4M multiply-adds, well under a millisecond) always go to MKL."""

MARGIN = 0.95
"""oneDNN's convolution serves a shape only if its best time is under this fraction of MKL's."""

_enabled = True
_faster: dict[tuple[int, int, int, bool], bool] = {}
"""Per shape (rows, in, out, bias): whether oneDNN's convolution won the timing."""


def set_autotune(enabled: bool) -> None:
    """Turn the per-shape choice on or off for the process; off, every token Linear runs as MKL's product."""
    global _enabled
    _enabled = enabled


def _as_conv(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    assert pointwise is not None
    batch, tokens, _ = x.shape
    grid = x.view(batch, tokens, 1, layer.in_features).permute(0, 3, 1, 2)  # (B, C, N, 1), channels-last
    weight = layer.weight.view(layer.out_features, layer.in_features, 1, 1)
    out = pointwise(grid, weight, layer.bias, [0, 0], [1, 1], [1, 1], 1, "none", [], None)
    return out.permute(0, 2, 3, 1).reshape(batch, tokens, layer.out_features)


def _conv_is_faster(layer: nn.Linear, x: torch.Tensor) -> bool:
    best = {False: float("inf"), True: float("inf")}
    for _ in range(5):
        for conv in (False, True):
            start = time.perf_counter()
            _as_conv(layer, x) if conv else layer(x)
            best[conv] = min(best[conv], time.perf_counter() - start)
    return best[True] < MARGIN * best[False]


def _eligible(layer: nn.Linear, x: torch.Tensor) -> bool:
    return (
        pointwise is not None
        and plain_module(layer, nn.Linear)
        and unwatched(x)
        and x.is_contiguous()
        and x.shape[2] == layer.in_features
        and x.shape[0] * x.shape[1] * layer.in_features * layer.out_features >= MIN_MACS
        and plain_weight(layer)
        and layer.weight.is_contiguous()
    )


def token_linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` for tokens (B, N, C), by the route measured faster for this shape (see the module docstring)."""
    # Proxies (FX) and graphs being compiled never reach the shape key: it would become control
    # flow, or specialise the graph to one batch size.
    if not _enabled or torch.compiler.is_compiling() or type(x) is not torch.Tensor or x.dim() != 3:
        return layer(x)
    key = (x.shape[0] * x.shape[1], x.shape[2], layer.out_features, layer.bias is not None)
    conv = _faster.get(key)
    if conv is False or not _eligible(layer, x):  # a shape MKL won needs no further checks
        return layer(x)
    if conv is None:
        conv = _faster[key] = _conv_is_faster(layer, x)
    return _as_conv(layer, x) if conv else layer(x)
