"""Seeded weights and inputs that any implementation can rebuild from a list of tensor names and shapes.

Comparing archspec against a reference implementation (timm, the official GFNet) needs the same weights
on both sides without shipping either the reference code or its checkpoints. :func:`seeded_state_dict`
makes a state_dict from names and shapes alone, with values whose scale keeps activations finite
through a deep network, so a key/shape list committed once is enough to rebuild the reference's
weights anywhere. It depends on torch only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch

_SMALL = ("cls_token", "pos_embed", "complex_weight", "dist_token")
"""Learned embeddings and spectral filters: small values, as their usual initialisation gives."""


def seeded_tensor(name: str, shape: Sequence[int], generator: torch.Generator) -> torch.Tensor:
    """One tensor of a seeded state_dict; what it holds depends on its name and shape only."""
    leaf = name.rsplit(".", 1)[-1]
    shape = tuple(shape)
    if leaf == "num_batches_tracked":
        return torch.zeros(shape, dtype=torch.long)
    if leaf == "running_var":
        return torch.rand(shape, generator=generator) + 0.5  # strictly positive variances
    if leaf == "running_mean":
        return torch.randn(shape, generator=generator) * 0.1
    if leaf in _SMALL:
        return torch.randn(shape, generator=generator) * 0.02
    if len(shape) <= 1 and leaf in ("weight", "gamma", "scale", "layer_scale", "res_scale"):
        return 1.0 + torch.randn(shape, generator=generator) * 0.1  # norm gains and per-channel scales
    if len(shape) <= 1:
        return torch.randn(shape, generator=generator) * 0.02  # biases and shifts
    fan_in = math.prod(shape[1:])
    return torch.randn(shape, generator=generator) / math.sqrt(fan_in)


def seeded_state_dict(shapes: Iterable[tuple[str, Sequence[int]]], seed: int = 0) -> dict[str, torch.Tensor]:
    """A state_dict with one seeded tensor per ``(name, shape)``, drawn in the order given."""
    generator = torch.Generator().manual_seed(seed)
    return {name: seeded_tensor(name, shape, generator) for name, shape in shapes}


def seeded_input(batch: int, channels: int, height: int, width: int, seed: int = 1) -> torch.Tensor:
    """A standard-normal image batch (B, C, H, W) from its own seeded generator."""
    return torch.randn(batch, channels, height, width, generator=torch.Generator().manual_seed(seed))
