"""Plan → ``nn.Module``. Each node's component builds its own module; this file only wires them."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from archspec import registry
from archspec.nn import Block, Body, DropPath, SpectralGatingNetwork
from archspec.plan import Node, Plan

if TYPE_CHECKING:
    from archspec.specbase import HeadSpec


def build_node(node: Node) -> nn.Module:
    """Build one component node through the registry."""
    return registry.get(node.kind, node.component).build(node)


def _layer_norm(node: Node) -> nn.Module:
    return nn.LayerNorm(node.args["dim"], eps=node.args["eps"])


def build_block(node: Node) -> Block:
    norm1, mixer, norm2, ffn = node.children
    rate = node.args["drop_path"]
    drop_path = DropPath(rate) if rate > 0 else nn.Identity()
    return Block(build_node(mixer), _layer_norm(norm1), _layer_norm(norm2), build_node(ffn), drop_path)


def init_weights(module: nn.Module) -> None:
    """SpectFormer-H's initialisation, applied to every submodule.

    Linear: truncated normal (std 0.02), zero bias. LayerNorm: ones and zeros. Conv2d: normal with
    std sqrt(2 / fan_out), zero bias. Spectral filters: randn × 0.02.
    """
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
        nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, SpectralGatingNetwork):
        with torch.no_grad():
            module.complex_weight.normal_(0.0, 0.02)


def build(
    plan: Plan,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    seed: int | None = 0,
) -> nn.Module:
    """Build the model a plan describes.

    Args:
        plan: the resolved plan.
        device: where parameters are allocated (``"cpu"``, ``"cuda"``, ``"meta"``, ...).
        dtype: parameter dtype; None keeps float32.
        seed: seeds torch's RNG so the same spec and seed give the same weights; None leaves it alone.
    """
    if seed is not None:
        torch.manual_seed(seed)
    with torch.device(device):
        body = Body(
            name=plan.name,
            embeds=[build_node(stage.embed) for stage in plan.stages],
            blocks=[nn.ModuleList(build_block(block) for block in stage.blocks) for stage in plan.stages],
            norms=[_layer_norm(stage.norm) for stage in plan.stages],
        )
        head = cast("type[HeadSpec]", registry.get("head", plan.head.component))
        model = head.build_model(plan.head, body)
        if torch.device(device).type != "meta":  # meta tensors hold no values to initialise
            model.apply(init_weights)
    if dtype is not None:
        model.to(dtype=dtype)
    return model
