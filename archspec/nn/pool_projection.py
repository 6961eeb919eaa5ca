"""MaxViT's shortcut: the mean over stride × stride cells, then a 1×1 conv where the width changes."""

from __future__ import annotations

import torch
from torch import nn

from archspec.nn.same_pad import SameAvgPool2d


class PoolProjection(nn.Module):
    """The shortcut of a block that changes grid or width without a strided conv: an average pool whose
    window is its stride (``pool``, identity at stride 1), then a 1×1 conv (``expand``, identity where the
    width is kept).

    Args:
        cin: channels in.
        cout: channels out.
        stride: the pool's window and stride.
        same: pad an odd grid as TensorFlow's SAME padding does (zeros counted in the mean) instead of
            dropping its last row and column.
        bias: whether the 1×1 conv has a bias.
    """

    def __init__(self, cin: int, cout: int, stride: int, same: bool = False, bias: bool = True) -> None:
        super().__init__()
        self.pool: nn.Module
        if stride == 1:
            self.pool = nn.Identity()
        else:
            self.pool = SameAvgPool2d(stride, stride) if same else nn.AvgPool2d(stride, stride)
        self.expand = nn.Conv2d(cin, cout, 1, bias=bias) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        return self.expand(self.pool(x))
