"""AFNO's token mixer: a block-diagonal complex MLP over the channels of every frequency (Guibas et al., 2021)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class AFNOMixer(nn.Module):
    """``x + irfft2(softshrink(W2 · relu(W1 · rfft2(x) + b1) + b2))`` with block-diagonal complex ``W1``, ``W2``.

    The channels are split into ``blocks`` groups; each frequency's group goes through its own two-layer
    complex MLP (hidden width ``block_size × hidden_factor``). Soft-shrinkage by ``sparsity`` zeroes the
    small frequency components. As in AFNO, the mixer adds its input back itself.

    Args:
        dim: channels (a multiple of ``blocks``).
        blocks: number of diagonal blocks.
        hidden_factor: hidden width of each block's MLP / its block size.
        sparsity: the soft-shrinkage threshold λ.
    """

    def __init__(self, dim: int, blocks: int, hidden_factor: int = 1, sparsity: float = 0.01) -> None:
        super().__init__()
        size = dim // blocks
        self.blocks, self.size, self.sparsity = blocks, size, sparsity
        hidden = size * hidden_factor
        self.w1 = nn.Parameter(0.02 * torch.randn(2, blocks, size, hidden))  # [real, imaginary]
        self.b1 = nn.Parameter(0.02 * torch.randn(2, blocks, hidden))
        self.w2 = nn.Parameter(0.02 * torch.randn(2, blocks, hidden, size))
        self.b2 = nn.Parameter(0.02 * torch.randn(2, blocks, size))

    def no_weight_decay(self) -> set[str]:
        """The MLPs' biases (stored (2, blocks, width)); the weights ``w1``, ``w2`` are decayed."""
        return {"b1", "b2"}

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:  # (B, N, C)
        batch, _, dim = x.shape
        height, width = hw
        grid = x.reshape(batch, height, width, dim).float()  # (B, H, W, C); FFTs stay in float32
        spectrum = torch.fft.rfft2(grid, dim=(1, 2), norm="ortho")  # (B, H, W//2+1, C) complex
        # (k, B·H·F, s): one batched product per diagonal block
        blocked = spectrum.reshape(-1, self.blocks, self.size).transpose(0, 1)
        real, imag = blocked.real, blocked.imag
        w1, w2, b1, b2 = self.w1, self.w2, self.b1[:, :, None], self.b2[:, :, None]
        hidden_real = F.relu(torch.bmm(real, w1[0]) - torch.bmm(imag, w1[1]) + b1[0])
        hidden_imag = F.relu(torch.bmm(imag, w1[0]) + torch.bmm(real, w1[1]) + b1[1])
        out_real = torch.bmm(hidden_real, w2[0]) - torch.bmm(hidden_imag, w2[1]) + b2[0]
        out_imag = torch.bmm(hidden_imag, w2[0]) + torch.bmm(hidden_real, w2[1]) + b2[1]
        mixed = F.softshrink(torch.stack((out_real, out_imag), dim=-1), lambd=self.sparsity)  # (k, B·H·F, s, 2)
        mixed = torch.view_as_complex(mixed.transpose(0, 1).contiguous()).reshape(batch, height, width // 2 + 1, dim)
        out = torch.fft.irfft2(mixed, s=(height, width), dim=(1, 2), norm="ortho").to(x.dtype)
        return x + out.reshape(batch, height * width, dim)  # (B, N, C), AFNO's own residual
