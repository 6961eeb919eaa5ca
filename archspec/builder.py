"""Plan → ``nn.Module``. Each node's component builds and initialises its own module; this file only
lays out the stages and hands them to the head."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from archspec import registry
from archspec.nn import Body
from archspec.plan import Plan
from archspec.registry import build_node

if TYPE_CHECKING:
    from archspec.specbase import HeadSpec


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
            blocks=[nn.ModuleList(build_node(block) for block in stage.blocks) for stage in plan.stages],
            norms=[build_node(stage.norm) for stage in plan.stages],
        )
        head = cast("type[HeadSpec]", registry.get("head", plan.head.component))
        model = head.build_model(plan.head, body)
    if dtype is not None:
        model.to(dtype=dtype)
    return model
