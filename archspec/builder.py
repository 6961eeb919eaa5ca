"""Plan → ``nn.Module``. Each node's component builds and initialises its own module; this file only
lays out the stages and hands them to the head."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from archspec import accel as speed
from archspec import registry
from archspec.errors import CheckError
from archspec.nn import Body
from archspec.nodes import Plan
from archspec.registry import build_node

if TYPE_CHECKING:
    from archspec.specbase import HeadSpec


def _held(model: nn.Module, path: str) -> int:
    """Parameters under a module path, or of one bare parameter (a spectral filter's ``complex_weight``)."""
    try:
        return sum(p.numel() for p in model.get_submodule(path).parameters())
    except AttributeError:
        return model.get_parameter(path).numel()


def check_against_plan(model: nn.Module, plan: Plan) -> None:
    """Every planned node's parameters are those of the modules it names, and the totals agree.

    A component whose plan and module drifted apart is caught here, at build time, with the node
    named, rather than by a wrong count in a table later. (FLOPs need a forward pass: the tests and
    ``archspec build`` check those.)

    Raises:
        CheckError: a node, or the whole model, holds other parameters than planned (AS701).
    """
    for node in reversed(list(plan.walk())):  # parts before what holds them: the drifting part is named
        if node.module_paths:
            held = sum(_held(model, path) for path in node.module_paths)
            if held != node.params:
                where = ", ".join(node.module_paths)
                raise CheckError(
                    f"{node.kind} {node.component!r} at {where} plans {node.params:,} parameters but its "
                    f"module holds {held:,}"
                )
    total = sum(p.numel() for p in model.parameters())
    if total != plan.params:
        raise CheckError(f"the built model has {total:,} parameters but the plan says {plan.params:,}")


def body_of(plan: Plan, embeds: list[nn.Module], blocks: list[nn.ModuleList], norms: list[nn.Module]) -> Body:
    """The stage modules of ``plan`` with what the model tells about itself: name, input and feature maps."""
    image = plan.input.grid or (1, 1)
    return Body(
        name=plan.name,
        embeds=embeds,
        blocks=blocks,
        norms=norms,
        in_chans=plan.input.channels,
        image_size=plan.input.grid,
        channels=[stage.dim for stage in plan.stages],
        reductions=[image[0] // stage.grid[0] for stage in plan.stages],
    )


def build(
    plan: Plan,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    seed: int | None = 0,
    retain_memory: bool = False,
    accel: bool | None = None,
) -> nn.Module:
    """Build the model a plan describes.

    Args:
        plan: the resolved plan.
        device: where parameters are allocated (``"cpu"``, ``"cuda"``, ``"meta"``, ...).
        dtype: parameter dtype; None keeps float32.
        seed: seeds torch's RNG so the same spec and seed give the same weights; None leaves it alone.
        retain_memory: True, for a model on the CPU: call :func:`archspec.accel.retain_freed_memory`,
            so that from then on the whole process (on glibc) keeps freed memory for reuse instead of
            handing it back to the OS: forward passes stop faulting in fresh pages, the resident set
            stays at its peak, and it cannot be undone. False (the default) leaves the allocator alone.
        accel: attach :mod:`archspec.accel`'s kernel paths (token-Linear kernel choice, fused conv +
            GELU) with :func:`archspec.accel.apply`; None follows the switch (``ARCHSPEC_ACCEL``,
            :func:`archspec.accel.set_enabled`). They change no result, module, name or parameter.
    """
    if retain_memory and torch.device(device).type == "cpu":
        speed.retain_freed_memory()
    if seed is not None:
        torch.manual_seed(seed)
    with torch.device(device):
        body = body_of(
            plan,
            embeds=[build_node(stage.embed) for stage in plan.stages],
            blocks=[nn.ModuleList(build_node(block) for block in stage.blocks) for stage in plan.stages],
            norms=[build_node(stage.norm) for stage in plan.stages],
        )
        head = cast("type[HeadSpec]", registry.get("head", plan.head.component))
        model = head.build_model(plan.head, body)
    check_against_plan(model, plan)
    if dtype is not None:
        model.to(dtype=dtype)
    if speed.enabled() if accel is None else accel:
        speed.apply(model)
    return model
