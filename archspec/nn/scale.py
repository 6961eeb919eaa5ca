"""Learnable per-channel scales for residual branches and residual paths."""

from __future__ import annotations

import torch
from torch import nn


class Scale(nn.Module):
    """Multiply the last axis (channels) by a learnable vector, initialised to ``init``.

    As a layer scale it damps a residual branch at the start of training (CaiT, ConvNeXt); as a
    residual scale it weighs the shortcut (MetaFormer). The parameter is ``scale``.
    """

    def __init__(self, dim: int, init: float = 1e-5) -> None:
        super().__init__()
        self.init = init
        self.scale = nn.Parameter(torch.empty(dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if not self.scale.is_meta:
            with torch.no_grad():
                self.scale.fill_(self.init)

    def extra_repr(self) -> str:
        return f"{self.scale.shape[0]}, init={self.init:g}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, N, C)
        return x * self.scale
