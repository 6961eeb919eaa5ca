"""Checking a built model against its plan: what ``archspec build`` checks, callable from Python.

:func:`check` counts the parameters, runs one forward pass on a random batch, compares the output
shapes with the plan's, and optionally runs a backward pass in which every parameter must receive a
gradient. Each disagreement raises :class:`~archspec.errors.CheckError` with the message the command
line prints. The memory budget (:func:`archspec.budget.check_budget`) and loading weights
(:func:`archspec.checkpoint.load_file`) come before the model is built or checked, so they are not
part of it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from archspec.errors import CheckError
from archspec.models import backbone, declared_cost
from archspec.nn.features import output_tensors
from archspec.nodes import Plan


@dataclass(frozen=True)
class CheckReport:
    """What :func:`check` found: every figure agreed with the plan."""

    name: str
    """The plan's name."""
    params: int
    """Parameters of the built model (the plan's count, which they matched)."""
    declared_params: int
    """Parameters of what ran: the model's, or for a spec with ``features:`` its backbone's (the
    head's are not used)."""
    backbone: bool
    """Whether the spec declares a backbone (``features:``), whose feature maps are the output."""
    input_shape: tuple[int, ...]
    """The random batch's shape, (batch, channels, height, width)."""
    output_shapes: list[tuple[int, ...]]
    """The output's shapes, batch first: the logits, or a backbone's maps in order."""
    device: str
    dtype: str
    """The batch's dtype without the ``torch.`` prefix (``float32``)."""
    forward_s: float
    """Wall time of the forward pass (under ``torch.inference_mode``), in seconds."""
    grad_tensors: int | None = None
    """Parameter tensors that received a gradient; None when the gradient check was not asked for."""
    backward_s: float | None = None
    """Wall time of the gradient check's forward and backward pass, in seconds (None without it)."""
    module: nn.Module | None = field(default=None, repr=False, compare=False)
    """The module that ran: the model, or the backbone view of it for a spec with ``features:``."""


def declared_shapes(plan: Plan) -> list[tuple[int, ...]]:
    """Per-sample output shapes of what the spec declares: the logits, or a backbone's feature maps."""
    if plan.spec.features is None:
        return [plan.out_shape.dims]
    return [(plan.stages[i].dim, *plan.stages[i].grid) for i in plan.spec.features.out_indices]


def _placement(model: nn.Module, device: Any, dtype: Any) -> tuple[torch.device, torch.dtype]:
    """The device and dtype asked for; where not given, those of the model's first parameter or buffer."""
    first = next(iter([*model.parameters(), *model.buffers()]), None)
    if device is None:
        device = first.device if first is not None else "cpu"
    if dtype is None:
        dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    elif isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    return torch.device(device), dtype


def check_grad(model: nn.Module, batch: torch.Tensor) -> int:
    """One forward and backward pass in training mode; every parameter must receive a gradient.

    Returns the number of parameter tensors; the model is left in evaluation mode, without gradients.
    """
    model.train()
    out = model(batch)
    outputs = out if isinstance(out, tuple) else (out,)
    sum(o.float().square().mean() for o in outputs).backward()
    dead = [name for name, p in model.named_parameters() if p.grad is None]
    model.zero_grad(set_to_none=True)
    model.eval()
    if dead:
        listing = "\n  ".join(dead)
        raise CheckError(f"{len(dead)} parameters received no gradient (they would break DDP):\n  {listing}", "AS702")
    return len(list(model.parameters()))


def check(
    model: nn.Module,
    plan: Plan,
    batch: int = 1,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    grad: bool = False,
) -> CheckReport:
    """Check a model built from ``plan`` (:func:`archspec.build`, the classifier) against the plan.

    The parameter count must be the plan's; a forward pass in evaluation mode on a random batch of
    ``batch`` images must return the plan's shapes (for a spec with ``features:``, the backbone view
    of the model runs and returns its feature maps); with ``grad``, a forward and backward pass in
    training mode must give every parameter a gradient. ``device`` and ``dtype`` are the batch's
    (``"cuda"``, ``"bfloat16"``, or torch's objects); by default the model's. The model is left in
    evaluation mode.

    Raises :class:`~archspec.errors.CheckError`: AS701 for a parameter count or shape that differs
    from the plan's, AS702 for parameters without gradient.
    """
    device, dtype = _placement(model, device, dtype)
    params = sum(p.numel() for p in model.parameters())
    if params != plan.params:
        raise CheckError(f"the built model has {params:,} parameters but the plan says {plan.params:,}")

    model.eval()
    runner, declared = model, params
    features = plan.spec.features
    if features is not None:  # a backbone: the stages' maps are the output
        runner = backbone(model, plan, features.out_indices).eval()
        declared = declared_cost(plan)[0]
    inputs = torch.randn(batch, *plan.input.dims, device=device, dtype=dtype)
    start = time.perf_counter()
    with torch.inference_mode():
        out = runner(inputs)
    ran = time.perf_counter() - start
    got = [tuple(o.shape) for o in output_tensors(out)]  # the logits, or a backbone's maps
    expected = [(batch, *shape) for shape in declared_shapes(plan)]
    if got != expected:
        raise CheckError(f"the model returned shapes {got} but the plan says {expected}")

    tensors = backward = None
    if grad:
        start = time.perf_counter()
        tensors = check_grad(model, inputs)
        backward = time.perf_counter() - start
    return CheckReport(
        name=plan.name,
        params=params,
        declared_params=declared,
        backbone=features is not None,
        input_shape=tuple(inputs.shape),
        output_shapes=got,
        device=str(device),
        dtype=str(dtype).removeprefix("torch."),
        forward_s=ran,
        grad_tensors=tensors,
        backward_s=backward,
        module=runner,
    )
