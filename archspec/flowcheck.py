"""Check a built block against its planned flow: the parts it calls, in order, on the planned operands.

A drawing and a diff read a block's planned ``flow``; the module runs its own ``forward``. This check
runs the module once with forward hooks on its parts and replays the plan's steps over what the hooks
saw: each part must be called in the planned order on exactly the tensor the plan says it reads, and
each addition's result must be what the next step reads. A block whose module computes something else
than its plan describes (a post-norm ``forward`` behind a pre-norm plan) fails here.
"""

from __future__ import annotations

import torch
from torch import nn

from archspec.nn.layout import grid_to_tokens
from archspec.nodes import LAYER_INPUT, Node

DROP_PATH = "drop_path"


class FlowMismatch(AssertionError):
    """The module did not run what its plan's flow says."""


def check_flow(node: Node, module: nn.Module, x: torch.Tensor, hw: tuple[int, int]) -> None:
    """Run ``module(x, hw)`` and compare each part's call with ``node.flow``; raise :class:`FlowMismatch`.

    Parts are the module's direct children, hooked by name. A step marked ``drop_path`` expects a call of
    the ``drop_path`` child on the branch before the addition.
    """
    calls: list[tuple[str, torch.Tensor, torch.Tensor]] = []
    inputs: list[torch.Tensor] = []

    # Copies, taken as they pass: an in-place activation would otherwise change what was recorded.
    def before(_: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        inputs.append(args[0].clone())

    def record(name: str):  # type: ignore[no-untyped-def]
        def hook(_: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            calls.append((name, inputs.pop(), output.clone()))

        return hook

    handles = []
    for name, child in module.named_children():
        handles += [child.register_forward_pre_hook(before), child.register_forward_hook(record(name))]
    try:
        with torch.no_grad():
            out, _ = module(x, hw)
    finally:
        for handle in handles:
            handle.remove()
    _replay(node, calls, x, out)


def _replay(
    node: Node, calls: list[tuple[str, torch.Tensor, torch.Tensor]], x: torch.Tensor, out: torch.Tensor
) -> None:
    values = {LAYER_INPUT: x}
    pending = iter(calls)
    previous = LAYER_INPUT
    where = f"{node.component} block at {node.module_path}"

    def expect(part: str, value: torch.Tensor, step: str) -> torch.Tensor:
        call = next(pending, None)
        if call is None:
            raise FlowMismatch(f"{where}: step {step!r} plans a call of {part!r}, but the module called nothing more")
        name, given, result = call
        if name != part:
            raise FlowMismatch(f"{where}: step {step!r} plans a call of {part!r}, but the module called {name!r}")
        if not _same(given, value):
            raise FlowMismatch(f"{where}: step {step!r}: {part!r} was called on another tensor than the plan's")
        return result

    for step in node.flow:
        sources = step.after or (previous,)
        if step.add:
            assert step.residual is not None
            branch, residual = values[sources[0]], values[step.residual]
            if step.drop_path:
                branch = expect(DROP_PATH, branch, step.name)
            values[step.name] = _add(residual, branch)
        elif step.concat:
            values[step.name] = torch.cat([_tokens(values[s]) for s in sources], dim=-1)
        elif step.class_token:
            values[step.name] = _tokens(values[sources[0]])[:, : node.in_shape.prefix]
        elif step.rejoin:
            values[step.name] = torch.cat([values[sources[0]], x[:, node.in_shape.prefix :]], dim=1)
        else:
            assert step.child is not None
            values[step.name] = expect(step.child, values[sources[0]], step.name)
        previous = step.name
    extra = next(pending, None)
    if extra is not None:
        raise FlowMismatch(f"{where}: the module called {extra[0]!r} after the plan's last step")
    if not _same(out, values[previous]):
        raise FlowMismatch(f"{where}: the module's output is not the value of the plan's last step {previous!r}")


def _tokens(value: torch.Tensor) -> torch.Tensor:
    return grid_to_tokens(value) if value.ndim == 4 else value


def _add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.ndim != b.ndim:
        a, b = _tokens(a), _tokens(b)
    return a + b


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal values, whichever of tokens (B, N, C) and grid (B, C, H, W) each is in."""
    if a.ndim != b.ndim:
        a, b = _tokens(a), _tokens(b)
    return a.shape == b.shape and bool(torch.equal(a, b))


__all__ = ["FlowMismatch", "check_flow"]
