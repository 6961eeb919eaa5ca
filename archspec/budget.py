"""A memory budget checked before anything is allocated, so a typo cannot freeze the machine.

The estimate is the plan's parameters plus its activation estimate at the requested batch size, in
the requested dtype. By default it must fit in half of the memory available now; ``--max-params``
sets a parameter ceiling instead and ``--no-budget`` skips the check.
"""

from __future__ import annotations

import os

from archspec.errors import ArchspecError
from archspec.nodes import Node, Plan
from archspec.units import memory_size

BYTES = {"float64": 8, "float32": 4, "bfloat16": 2, "float16": 2}
TRAINING_COPIES = 3
"""Activation estimates one training image keeps: the forward pass, its gradients and the work between."""
SHARE = 0.5
"""Fraction of the currently available memory a build may plan to use."""
FALLBACK_BYTES = 8 * 2**30
"""Memory assumed available where the system does not say how much is."""


class BudgetError(ArchspecError):
    """A plan is larger than the memory or parameter budget."""

    code = "AS401"


def available_bytes() -> int | None:
    """Memory available to new allocations: MemAvailable on Linux, else physical pages; None if unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_limit() -> int:
    """Bytes that reading a checkpoint may allocate: the memory available now (the model it is read
    for is already built), or :data:`FALLBACK_BYTES` where that is unknown."""
    available = available_bytes()
    return available if available is not None else FALLBACK_BYTES


def activation_bytes(plan: Plan, bytes_per_value: int = 4) -> int:
    """Sum of the outputs, for one sample, of every top-level node and every block part: a rough
    estimate of what training keeps. What a component holds inside (its layers, an FFN's activation)
    is left out: the estimate counts each component's output once."""

    def size(node: Node) -> int:
        grid = node.out_shape.grid
        return node.out_shape.channels * (grid[0] * grid[1] if grid else 1)

    nodes = [part for node in plan.nodes for part in (node, *(node.children if node.kind == "block" else ()))]
    return bytes_per_value * sum(size(node) for node in nodes if node.kind not in ("layer", "part"))


def training_bytes(plan: Plan, batch: int, width: int = 4) -> int:
    """What training ``plan`` at ``batch`` keeps: the parameters with their gradients and AdamW's two
    moments, and :data:`TRAINING_COPIES` times a batch's activations, at ``width`` bytes a value."""
    return width * (4 * plan.params + TRAINING_COPIES * batch * activation_bytes(plan, 1))


def check_budget(
    plan: Plan,
    dtype: str = "float32",
    batch: int = 1,
    max_params: int | None = None,
    remedy: str = "pass --max-params or --no-budget",
    data_bytes: int = 0,
    training: bool = False,
) -> None:
    """Raise :class:`BudgetError` when building and running ``plan`` would not fit the budget.

    ``data_bytes`` counts data held beside the model (``fit``'s images in memory); ``training``
    counts what a training step keeps (:data:`TRAINING_COPIES` times the activations, and the
    gradients and AdamW's two moments beside the parameters). ``remedy`` ends the message: how the
    caller lets a model this large through.
    """
    if max_params is not None:
        if plan.params > max_params:
            raise BudgetError(
                f"{plan.name} has {plan.params:,} parameters, over --max-params {max_params:,}; "
                "raise the limit or pass --no-budget"
            )
        return
    available = available_bytes()
    if available is None:
        return
    width = BYTES.get(dtype, 4)
    params = plan.params * width * (4 if training else 1)
    activations = activation_bytes(plan, width) * batch * (TRAINING_COPIES if training else 1)
    if params + activations + data_bytes > SHARE * available:
        joint, data = (", ", f" and {memory_size(data_bytes)} of images") if data_bytes else (" and ", "")
        kept = ", with gradients and optimiser state" if training else ""
        needs = f"about {memory_size(params)} of parameters ({plan.params:,} × {width} bytes{kept}){joint}"
        budget = f"the budget of {memory_size(SHARE * available)} (half of the {memory_size(available)} available)"
        raise BudgetError(
            f"{plan.name} needs {needs}{memory_size(activations)} of activations {'for training ' * training}at batch "
            f"{batch}{data}, over {budget}; check the spec for a typo, or {remedy}"
        )
