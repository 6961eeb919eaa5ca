"""Weight initialisations that components apply to the modules they build.

Each returns the module it was given, so a component's ``build`` reads ``return init_x(Module(...))``.
Meta tensors hold no values and are left alone.
"""

from __future__ import annotations

import math
from typing import TypeVar

import torch
from torch import nn

M = TypeVar("M", bound=nn.Module)


def init_trunc_normal(module: M, std: float = 0.02) -> M:
    """Every Linear under ``module``: weights from a normal truncated at ±2, zero biases (ViT, PVT, SpectFormer)."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear) and not layer.weight.is_meta:
            nn.init.trunc_normal_(layer.weight, std=std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module


def init_fan_out(module: M) -> M:
    """Every Conv2d under ``module``: normal weights with std sqrt(2 / fan_out), zero biases (PVT, SpectFormer)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d) and not layer.weight.is_meta:
            fan_out = layer.kernel_size[0] * layer.kernel_size[1] * layer.out_channels // layer.groups
            nn.init.normal_(layer.weight, 0.0, math.sqrt(2.0 / fan_out))
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module


def init_kaiming(module: M) -> M:
    """Every Conv2d under ``module``: He-normal weights for ReLU (fan_out), zero biases (ResNet)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d) and not layer.weight.is_meta:
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module


def init_trunc_normal_convs(module: M, std: float = 0.02) -> M:
    """Every Conv2d and Linear under ``module``: truncated normal weights, zero biases (ConvNeXt, MetaFormer)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.Linear) and not layer.weight.is_meta:
            nn.init.trunc_normal_(layer.weight, std=std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module


def fill_(parameter: torch.Tensor, value: float) -> None:
    """Set a parameter to ``value`` everywhere (layer scales), unless it is a meta tensor."""
    if not parameter.is_meta:
        with torch.no_grad():
            parameter.fill_(value)
