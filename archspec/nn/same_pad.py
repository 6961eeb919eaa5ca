"""TensorFlow's SAME padding: a window of ``kernel`` cells at ``stride`` gives ceil(size / stride) outputs,
the padding it needs split with the odd cell at the bottom and right (TF-trained MaxViT and EfficientNet)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archspec.flops import same_out


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """The (before, after) padding of one axis: what the last window needs, the odd cell after."""
    total = max((same_out(size, stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """``x`` (B, C, H, W) padded with zeros for a ``kernel`` window at ``stride`` (a no-op where none is needed)."""
    top, bottom = same_padding(x.shape[-2], kernel, stride)
    left, right = same_padding(x.shape[-1], kernel, stride)
    if top or bottom or left or right:
        x = F.pad(x, (left, right, top, bottom))
    return x


torch.fx.wrap("pad_same")


class SameConv2d(nn.Module):
    """A convolution whose input is padded as TensorFlow's SAME padding pads it, on every call, so that
    any grid gives ceil(size / stride) cells. Its parameters are a Conv2d's (``weight``, ``bias``).

    Args:
        cin: channels in.
        cout: channels out.
        kernel: the square window's side.
        stride: the stride along both axes.
        groups: channel groups.
        bias: whether it has a bias.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, bias: bool = True) -> None:
        super().__init__()
        self.kernel, self.stride, self.groups = kernel, stride, groups
        self.weight = nn.Parameter(torch.empty(cout, cin // groups, kernel, kernel))
        self.bias = nn.Parameter(torch.empty(cout)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He-normal weights over the fan-out, zero biases."""
        if self.weight.is_meta:
            return
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        x = pad_same(x, self.kernel, self.stride)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, 1, self.groups)

    def extra_repr(self) -> str:
        cout, cin = self.weight.shape[0], self.weight.shape[1] * self.groups
        return f"{cin}, {cout}, kernel={self.kernel}, stride={self.stride}, groups={self.groups}, padding=same"


class SameAvgPool2d(nn.Module):
    """Mean over ``kernel`` × ``kernel`` windows at ``stride``, the input first padded with zeros as SAME
    padding pads it (the zeros count in the mean, as in TensorFlow's ported models)."""

    def __init__(self, kernel: int, stride: int) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        return F.avg_pool2d(pad_same(x, self.kernel, self.stride), self.kernel, self.stride)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}, padding=same"
