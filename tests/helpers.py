"""Checks that a built model agrees with its plan, node by node."""

from __future__ import annotations

import torch
from torch import nn

from archspec.flop_count import flop_counter
from archspec.nodes import Plan


def is_module(model: nn.Module, path: str) -> bool:
    try:
        model.get_submodule(path)
    except AttributeError:
        return False
    return True


def module_params(model: nn.Module, path: str) -> int:
    """Parameters under a module path, or of one bare parameter (the spectral filter's complex_weight)."""
    if is_module(model, path):
        return sum(p.numel() for p in model.get_submodule(path).parameters())
    return model.get_parameter(path).numel()


def assert_params_match(plan: Plan, model: nn.Module) -> None:
    """Every node's params, layers included, are those of its module paths; a layer with none has none."""
    for node in plan.walk():
        counted = sum(module_params(model, path) for path in node.module_paths)
        assert counted == node.params, (node.module_paths, counted, node.params)
    assert sum(p.numel() for p in model.parameters()) == plan.params


def _counted(counts: dict[str, dict[object, int]], name: str) -> int:
    """FLOPs under one module; a container that is never called itself (ModuleList) sums its children."""
    if name in counts:
        return sum(counts[name].values())
    children = {key for key in counts if key.startswith(name + ".") and "." not in key[len(name) + 1 :]}
    return sum(sum(counts[key].values()) for key in children)


def assert_flops_match(plan: Plan, model: nn.Module, batch: int = 2) -> torch.Tensor:
    """Run one eval forward under the FLOP counter; every node's counted FLOPs equal batch × plan FLOPs.

    A node with no module paths (a functional op such as rfft2 or sdpa) or one that names a bare
    parameter (the spectral filter) is skipped: its FLOPs happen in its parent's forward, which is checked.
    """
    model.eval()
    x = torch.randn(batch, *plan.input.dims)
    with flop_counter() as counter, torch.no_grad():
        out = model(x)
    counts = counter.get_flop_counts()
    root = type(model).__name__
    for node in plan.walk():
        if not node.module_paths or not all(is_module(model, path) for path in node.module_paths):
            continue
        counted = sum(_counted(counts, f"{root}.{path}") for path in node.module_paths)
        assert counted == batch * node.flops, (node.module_paths, counted, batch * node.flops)
    assert counter.get_total_flops() == batch * plan.flops
    assert tuple(out.shape) == (batch, *plan.out_shape.dims)
    return out
