"""Token ↔ grid views. Tokens (B, N, C) are channels-last grids in memory, so neither way copies.

The grid view is built with a permute rather than ``transpose(1, 2).reshape(...)``: both give the
same strides for a batch above one, but for a batch of one the reshape leaves a batch stride that
torch does not recognise as channels-last, and convolutions then copy their input to NCHW.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn


def tokens_to_grid(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """(B, N, C) tokens → a (B, C, H, W) view that is channels-last in memory."""
    batch, _, dim = x.shape
    return x.reshape(batch, *hw, dim).permute(0, 3, 1, 2)


def traced_ints(sizes: tuple[Any, ...]) -> tuple[int, ...] | None:
    """``sizes`` as plain ints where they are known: eagerly (ints) and under ``torch.jit.trace``, whose
    sizes are 0-d tensors that hold the example input's values. A trace records one path through Python
    branches and so specialises on the example's shapes anyway: reading their values loses nothing (and
    its warning that the trace may not generalise is silenced here). None for symbolic sizes (FX,
    ``torch.export`` with dynamic shapes, ``torch.compile``), whose values are not known.
    """
    if all(type(size) is int for size in sizes):
        return sizes
    if not all(type(size) is int or isinstance(size, torch.Tensor) for size in sizes):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # int() of a traced size: the TracerWarning that the trace is specialised
        return tuple(int(size) for size in sizes)


def one_cell(hw: tuple[int, int]) -> bool:
    """Whether a grid is known to be a single cell (False for sizes being traced symbolically)."""
    return traced_ints(tuple(hw)) == (1, 1)


def nchw_cell(x: torch.Tensor) -> torch.Tensor:
    """(B, N, C) tokens of a one-cell grid → a (B, C, 1, 1) view with NCHW strides.

    A one-cell grid is the same memory in either layout, and torch picks a convolution's layout from
    the strides of the size-1 dimensions: :func:`tokens_to_grid` gives strides it reads as
    channels-last. A block that runs NCHW at every other grid size (a ResNet's, whose tokens are
    views of NCHW grids) takes this view instead, so its convolutions stay NCHW and their weight
    gradients come back with the weights' strides, which DistributedDataParallel checks exactly.
    """
    return x.reshape(x.shape[0], x.shape[2], 1, 1)


def grid_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) grid → (B, N, C) tokens, as a view: contiguous when the grid is channels-last."""
    batch, dim = x.shape[:2]
    return x.permute(0, 2, 3, 1).reshape(batch, -1, dim)


def dense_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) grid → (B, N, C) tokens that are contiguous: a view of a channels-last grid, a copy
    of any other. Stems and downsamples hand their blocks these, so that a conv fed a channels-first
    image does not leave every later layer of the stage (and every stage after it) strided."""
    return grid_to_tokens(x).contiguous()


def grid_tokens(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """The tokens of the grid cells, without the class token(s) in front.

    The slice is taken whether or not there are class tokens (it is then the whole tensor, as a
    view), so no Python branch depends on a size and FX can trace it.
    """
    return x[:, x.shape[1] - hw[0] * hw[1] :]


def known_equal(hw: tuple[int, int], built: tuple[int, int]) -> bool:
    """Whether a grid is the built one, as far as is known without guarding on it.

    Eagerly the sizes are ints and this is ``hw == built``; under ``torch.jit.trace`` they are 0-d
    tensors holding the example's sizes, compared as ints (the trace specialises on them). Under
    ``torch.export`` with a dynamic height and width they are symbols: the answer is then False (the
    resizing path, which at the built size reproduces the built tensor), and no guard pins the program
    to the traced size.
    """
    known = traced_ints((*hw, *built))
    if known is not None:
        return known[: len(hw)] == known[len(hw) :]
    from torch.fx.experimental.symbolic_shapes import statically_known_true  # half a second to import: only here

    return all(statically_known_true(a == b) for a, b in zip(hw, built, strict=True))


def channels_last_weight(conv: nn.Conv2d) -> nn.Conv2d:
    """Give ``conv`` its weight in channels-last strides where that moves no value, and return it.

    A convolution over a channels-last grid (tokens seen as a grid) computes its weight's gradient
    channels-last. A depthwise weight (C, 1, k, k) holds the same memory in either layout, so autograd
    keeps that gradient as it comes, with the stride of the size-1 dimension differing from the
    weight's; DistributedDataParallel compares strides exactly and warns on every rank ("Grad strides
    do not match bucket view strides"). Stored channels-last, the weight has the strides its gradient
    comes in, and the convolution runs channels-last as it did, on the same memory. Values, state_dict
    keys and shapes are unchanged; a weight whose layouts differ in memory is left as it is.
    """
    weight = conv.weight
    if weight.is_contiguous() and weight.is_contiguous(memory_format=torch.channels_last):
        conv.weight = nn.Parameter(weight.detach().clone(memory_format=torch.channels_last), weight.requires_grad)
    return conv
