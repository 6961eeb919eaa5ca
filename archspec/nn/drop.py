"""Stochastic depth: drop a residual branch for whole samples during training."""

from __future__ import annotations

import torch
from torch import nn


class DropPath(nn.Module):
    """Zero the branch for a random subset of samples and rescale the rest by ``1 / (1 - p)``.

    It prints as ``DropPath()`` (no extra repr), so blocks that differ only in their rate still
    collapse into one ``N x Block`` line when a model is printed.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop-path probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask_shape = (x.shape[0],) + (1,) * (x.ndim - 1)  # one draw per sample
        mask = x.new_empty(mask_shape).bernoulli_(keep)
        return x * mask / keep
