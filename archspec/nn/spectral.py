"""GFNet-style global filter: mix tokens by a learnable filter in the 2-D Fourier domain."""

from __future__ import annotations

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from archspec.nn.layout import grid_to_tokens, known_equal, tokens_to_grid


class SpectralGatingNetwork(nn.Module):
    """``irfft2(rfft2(x) * W)`` over the token grid, optionally between two k×k convs.

    The FFT runs in float32 whatever the model's dtype, with ``norm="ortho"``, and the result is
    cast back. ``complex_weight`` holds the filter as (height, width // 2 + 1, dim, 2) real pairs for
    the grid the model was built for. On another grid the filter is resized bilinearly (the GFNet
    authors' recipe for fine-tuning at a new resolution), or, with ``resize="strict"``, refused.

    Args:
        dim: channels.
        height: token-grid height.
        width: token-grid width.
        conv_in: kernel of the conv before the filter (``conv_input``), or None.
        conv_out: kernel of the conv after the filter (``conv_output``), or None.
        resize: ``"interpolate"`` or ``"strict"``: what to do on a grid of another size.
    """

    def __init__(
        self,
        dim: int,
        height: int,
        width: int,
        conv_in: int | None = None,
        conv_out: int | None = None,
        resize: str = "interpolate",
    ) -> None:
        super().__init__()
        if resize not in ("interpolate", "strict"):
            raise ValueError(f"resize must be 'interpolate' or 'strict', got {resize!r}")
        self.resize = resize
        self.conv_input = nn.Conv2d(dim, dim, conv_in, padding=conv_in // 2) if conv_in else None
        self.conv_output = nn.Conv2d(dim, dim, conv_out, padding=conv_out // 2) if conv_out else None
        self.complex_weight = nn.Parameter(torch.empty(height, width // 2 + 1, dim, 2))
        self.grid = (height, width)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw the filter from N(0, 0.02²), as GFNet does. Meta tensors are left alone: they hold no
        values, and the out-of-place ops on them would load torch's Python meta kernels (about a second)."""
        if not self.complex_weight.is_meta:
            with torch.no_grad():
                self.complex_weight.copy_(torch.randn_like(self.complex_weight) * 0.02)

    def no_weight_decay(self) -> set[str]:
        """The global filter is trained without weight decay: decay would pull every frequency's gain to 0."""
        return {"complex_weight"}

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        batch, tokens, dim = x.shape
        height, width = hw
        weight = self._filter(height, width)
        if self.conv_input is not None:
            x = self.conv_input(tokens_to_grid(x, hw)).permute(0, 2, 3, 1)  # (B, H, W, C)
        else:
            x = x.reshape(batch, height, width, dim)  # (B, H, W, C)
        dtype = x.dtype
        # Half-precision FFTs lose too much and only accept power-of-two sizes: keep this in float32.
        spectrum = torch.fft.rfft2(x.float(), dim=(1, 2), norm="ortho")  # (B, H, W//2+1, C) complex
        spectrum = spectrum * torch.view_as_complex(weight)
        x = torch.fft.irfft2(spectrum, s=(height, width), dim=(1, 2), norm="ortho").to(dtype)  # (B, H, W, C)
        if self.conv_output is not None:
            return grid_to_tokens(self.conv_output(x.permute(0, 3, 1, 2)))
        return x.reshape(batch, tokens, dim)

    def _filter(self, height: int, width: int) -> torch.Tensor:
        """The filter for a ``height`` × ``width`` grid as (height, width // 2 + 1, dim, 2) float32 pairs."""
        return resized_filter(self.complex_weight, self.grid, height, width, self.resize == "strict")


def resized_filter(weight: torch.Tensor, built: tuple[int, int], height: int, width: int, strict: bool) -> torch.Tensor:
    """``weight`` (a filter for the ``built`` grid) for a ``height`` × ``width`` grid, in float32.

    A free function that FX records as one call (``torch.fx.wrap``): which way it goes depends on
    the grid's size, which FX cannot know while tracing.
    """
    weight = weight.float()
    if known_equal((height, width), built):
        return weight
    if strict:
        raise ValueError(
            f"SpectralGatingNetwork was built for a {built[0]}×{built[1]} token grid, got {height}×{width} "
            "(resize='strict')"
        )
    rows, bins, dim, _ = weight.shape
    planes = weight.permute(2, 3, 0, 1).reshape(1, dim * 2, rows, bins)  # (1, C·2, h, w//2+1)
    planes = F.interpolate(planes, size=(height, width // 2 + 1), mode="bilinear", align_corners=True)
    return planes.reshape(dim, 2, height, width // 2 + 1).permute(2, 3, 0, 1).contiguous()  # (H, W//2+1, C, 2)


torch.fx.wrap("resized_filter")
