"""Global response normalisation (ConvNeXt-V2): each channel scaled by how strongly it responds over the
whole image, relative to the other channels."""

from __future__ import annotations

import torch
from torch import nn


class GlobalResponseNorm(nn.Module):
    """``x + beta + gamma · x · n`` per channel, where ``n`` is the channel's L2 norm over every position
    divided by the mean of those norms over the channels (Woo et al., 2023).

    ``weight`` (gamma) and ``bias`` (beta) start at zero, so the layer starts as the identity. The input
    is channels-last, tokens (B, N, C) or (B, H, W, C), whose positions are every axis between the batch
    and the channels; a pooled (B, C) vector counts as one position. With ``grid`` set it is a
    (B, C, H, W) grid instead.

    Args:
        dim: channels.
        eps: added to the mean norm before dividing by it.
        grid: whether the input is a (B, C, H, W) grid rather than channels-last.
    """

    def __init__(self, dim: int, eps: float = 1e-6, grid: bool = False) -> None:
        super().__init__()
        self.eps = eps
        self.grid = grid
        self.weight = nn.Parameter(torch.zeros(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, eps={self.eps}" + (", grid=True" if self.grid else "")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        # (B, positions, C): a grid's H·W cells, or every axis between batch and channels, whatever the rank
        x = x.flatten(2).transpose(1, 2) if self.grid else x.reshape(shape[0], -1, shape[-1])
        strength = torch.linalg.vector_norm(x, dim=1, keepdim=True)  # (B, 1, C)
        relative = strength / (strength.mean(dim=-1, keepdim=True) + self.eps)
        out = x + torch.addcmul(self.bias, self.weight, x * relative)
        if self.grid:
            return out.transpose(1, 2).reshape(shape)  # (B, C, H, W)
        return out.reshape(shape)
