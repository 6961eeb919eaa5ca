"""ResNet's residual blocks (basic and bottleneck) and their projection shortcut.

The blocks take tokens (B, N, C) like every block, run their convs on the grid view of them and
return the tokens of their output grid, which a strided block shrinks.
"""

from __future__ import annotations

import torch
from torch import nn

from archspec.nn.layout import grid_to_tokens, tokens_to_grid


class Projection(nn.Module):
    """The shortcut of a block that changes width or grid: a strided 1×1 conv without bias, then a norm.

    Args:
        cin: channels in.
        cout: channels out.
        stride: the conv's stride (the block's).
        norm: the norm of the conv's output grid.
    """

    def __init__(self, cin: int, cout: int, stride: int, norm: nn.Module) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, stride, bias=False)
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        return self.norm(self.conv(x))


class BasicBlock(nn.Module):
    """``act2(bn2(conv2(act1(bn1(conv1(x))))) + shortcut(x))`` with two 3×3 convs (ResNet-18/34).

    Args:
        cin: channels in.
        dim: channels out (and of the first conv).
        stride: stride of the first 3×3 conv (and of the shortcut).
        bn1, bn2: norms after the convs.
        act1, act2: activations after ``bn1`` and after the addition.
        shortcut: a :class:`Projection`, or None for the identity.
        drop_path: ``DropPath`` or ``nn.Identity``, applied to the branch.
    """

    def __init__(
        self,
        cin: int,
        dim: int,
        stride: int,
        bn1: nn.Module,
        act1: nn.Module,
        bn2: nn.Module,
        act2: nn.Module,
        shortcut: nn.Module | None,
        drop_path: nn.Module,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, dim, 3, stride, 1, bias=False)
        self.bn1 = bn1
        self.act1 = act1
        self.conv2 = nn.Conv2d(dim, dim, 3, 1, 1, bias=False)
        self.bn2 = bn2
        self.shortcut = shortcut
        self.act2 = act2
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
        grid = tokens_to_grid(x, hw)  # (B, C, H, W), a view of the tokens
        out = self.act1(self.bn1(self.conv1(grid)))
        out = self.bn2(self.conv2(out))
        shortcut = grid if self.shortcut is None else self.shortcut(grid)
        out = self.act2(self.drop_path(out) + shortcut)
        return grid_to_tokens(out), (out.shape[-2], out.shape[-1])  # (B, N, C) of the output grid


class Bottleneck(nn.Module):
    """1×1 conv down to ``width``, 3×3 conv (strided), 1×1 conv up to ``dim``, plus the shortcut (ResNet-50+).

    The stride sits on the 3×3 conv (ResNet v1.5, as timm and torchvision place it).

    Args:
        cin: channels in.
        width: channels of the inner 3×3 conv.
        dim: channels out.
        stride: stride of the 3×3 conv (and of the shortcut).
        bn1, bn2, bn3: norms after the three convs.
        act1, act2, act3: activations after ``bn1``, ``bn2`` and the addition.
        shortcut: a :class:`Projection`, or None for the identity.
        drop_path: ``DropPath`` or ``nn.Identity``, applied to the branch.
    """

    def __init__(
        self,
        cin: int,
        width: int,
        dim: int,
        stride: int,
        bn1: nn.Module,
        act1: nn.Module,
        bn2: nn.Module,
        act2: nn.Module,
        bn3: nn.Module,
        act3: nn.Module,
        shortcut: nn.Module | None,
        drop_path: nn.Module,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = bn1
        self.act1 = act1
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = bn2
        self.act2 = act2
        self.conv3 = nn.Conv2d(width, dim, 1, bias=False)
        self.bn3 = bn3
        self.shortcut = shortcut
        self.act3 = act3
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
        grid = tokens_to_grid(x, hw)  # (B, C, H, W), a view of the tokens
        out = self.act1(self.bn1(self.conv1(grid)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = grid if self.shortcut is None else self.shortcut(grid)
        out = self.act3(self.drop_path(out) + shortcut)
        return grid_to_tokens(out), (out.shape[-2], out.shape[-1])  # (B, N, C) of the output grid
