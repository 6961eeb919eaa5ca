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

Training is timed apart from inference, forward and backward together: on a 2-core AMD EPYC, the
1×1 convolution's forward and backward took 0.5–0.7 of the Linear's at ConvNeXt's MLP shapes (batch
8), which made ConvNeXt-V2-Atto's training step 1.3× as long as timm's 1×1-conv MLP. The training
route is :func:`torch.nn.functional.conv2d`, which autograd differentiates as usual; the timing runs
on detached copies, so it leaves no gradient behind.

The choice is made only for a plain ``nn.Linear`` on plain float32 CPU tensors with nothing watching
the operators (see :func:`archspec.nn.conv_act.unwatched`): in inference mode, where
:mod:`archspec.nn.conv_act` fuses a conv with its GELU, and under autograd; and only for products of
at least :data:`MIN_MACS` multiply-adds. Everywhere else (``torch.no_grad``, autocast, tracing) the
Linear is called as a module. ``set_autotune(False)`` turns the choice off for the process.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F
from torch import nn

from archspec.nn.conv_act import plain_module, plain_weight, pointwise, unwatched

MIN_MACS = 1 << 22
"""Products smaller than this (4M multiply-adds, well under a millisecond) always go to MKL."""

MARGIN = 0.95
"""oneDNN's convolution serves a shape only if its best time is under this fraction of MKL's."""

_enabled = True
_faster: dict[tuple[int, int, int, bool, bool], bool] = {}
"""Per shape (rows, in, out, bias) and route (training or not): whether oneDNN's convolution won the timing."""


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


def _as_trainable_conv(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    batch, tokens, _ = x.shape
    grid = x.view(batch, tokens, 1, layer.in_features).permute(0, 3, 1, 2)  # (B, C, N, 1), channels-last
    weight = layer.weight.view(layer.out_features, layer.in_features, 1, 1)
    out = F.conv2d(grid, weight, layer.bias)  # (B, out, N, 1), channels-last
    return out.permute(0, 2, 3, 1).reshape(batch, tokens, layer.out_features)


def _trained_conv_is_faster(layer: nn.Linear, x: torch.Tensor) -> bool:
    """Time forward + backward of both routes on detached copies of the layer and the tokens, in a thread
    of its own: autograd's thread-local state (saved-tensor hooks, which activation checkpointing and
    memory probes install, anomaly mode) then never sees the probe's graph."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(_time_training, layer, x).result()


def _time_training(layer: nn.Linear, x: torch.Tensor) -> bool:
    probe = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
    with torch.no_grad():
        probe.weight.copy_(layer.weight)
        if probe.bias is not None and layer.bias is not None:
            probe.bias.copy_(layer.bias)
    tokens = x.detach().requires_grad_(x.requires_grad)
    grad = torch.ones(*x.shape[:2], layer.out_features)
    best = {False: float("inf"), True: float("inf")}
    for _ in range(5):
        for conv in (False, True):
            start = time.perf_counter()
            (_as_trainable_conv(probe, tokens) if conv else probe(tokens)).backward(grad)
            best[conv] = min(best[conv], time.perf_counter() - start)
    return best[True] < MARGIN * best[False]


def _conv_is_faster(layer: nn.Linear, x: torch.Tensor) -> bool:
    best = {False: float("inf"), True: float("inf")}
    for _ in range(5):
        for conv in (False, True):
            start = time.perf_counter()
            _as_conv(layer, x) if conv else layer(x)
            best[conv] = min(best[conv], time.perf_counter() - start)
    return best[True] < MARGIN * best[False]


def _eligible(layer: nn.Linear, x: torch.Tensor, training: bool) -> bool:
    return (
        pointwise is not None
        and plain_module(layer, nn.Linear)
        and unwatched(x, inference=not training)
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
    training = torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    key = (x.shape[0] * x.shape[1], x.shape[2], layer.out_features, layer.bias is not None, training)
    conv = _faster.get(key)
    if conv is False or not _eligible(layer, x, training):  # a shape MKL won needs no further checks
        return layer(x)
    if conv is None:
        conv = _faster[key] = (_trained_conv_is_faster if training else _conv_is_faster)(layer, x)
    if not conv:
        return layer(x)
    return _as_trainable_conv(layer, x) if training else _as_conv(layer, x)
