"""A faster way to run an ``nn.Linear`` for CPU inference: oneDNN's matrix product with the bias fused in.

``F.linear`` on a CPU first copies the bias into every row of the output and then accumulates the
product onto it, one extra pass over the largest activations of a block (SpectFormer-H-S's first
FFN writes 8 × 3136 × 512 floats per batch of 8). oneDNN adds the bias as it writes each output
tile. SpectFormer-H-S ran about 6% faster at batch 1 and 10% at batch 8 on one machine, and
no faster on another (an AMD EPYC): ``benchmarks/ab_reference.py`` measures it side by side.

Blocks keep plain ``nn.Linear`` modules (so tools that match the exact type, such as
``quantize_dynamic``, or that hook it, such as FLOP and parameter counters, see them) and call
them through :func:`linear`. It takes the fused kernel only under ``torch.inference_mode`` (the
promise that nothing will differentiate the result), for an exact ``nn.Linear`` with no hooks and
its own ``forward``, on plain float32 CPU tensors, and only where nothing watches which operators
run: not under autocast,
``torch.compile``, ``torch.jit.trace``, FX tracing, a dispatch mode such as ``FlopCounterMode`` or
``make_fx``, or a functorch transform such as ``vmap``. Everywhere else it calls the module.
Results differ from ``nn.Linear``'s by float rounding only.
"""

from __future__ import annotations

from typing import TypeGuard

import torch
from torch import nn
from torch.nn.modules import module as _module

_fused = getattr(torch.ops.mkldnn, "_linear_pointwise", None) if torch.backends.mkldnn.is_available() else None  # type: ignore[no-untyped-call]


def _unwatched(layer: nn.Module) -> TypeGuard[nn.Linear]:
    """An exact ``nn.Linear`` that no hook (its own or a global one) is watching."""
    return (
        type(layer) is nn.Linear
        and "forward" not in layer.__dict__  # a forward replaced on the instance (adapters, offloading)
        and not layer._forward_hooks
        and not layer._forward_pre_hooks
        and not _module._global_forward_hooks
        and not _module._global_forward_pre_hooks
    )


def _takes_fast_path(x: torch.Tensor, weight: torch.Tensor) -> bool:
    return (
        _fused is not None
        and not torch.compiler.is_compiling()  # first: the compiler then reads no further
        and type(x) is torch.Tensor  # also excludes FX proxies and tensor subclasses
        and type(weight) in (nn.Parameter, torch.Tensor)
        and torch.is_inference_mode_enabled()
        and x.device.type == "cpu"
        and x.dtype == weight.dtype == torch.float32
        and x.shape[-1] == weight.shape[1]  # otherwise nn.Linear's own message
        and not torch.is_autocast_enabled("cpu")
        and not torch._C._get_tracing_state()
        and torch._C._len_torch_dispatch_stack() == 0
        and not torch._C._functorch.is_functorch_wrapped_tensor(x)
    )


def linear(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)``, through the fused kernel where the module docstring says it is safe."""
    if _unwatched(layer) and _takes_fast_path(x, layer.weight):
        return _fused(x, layer.weight, layer.bias, "none", [], "")  # type: ignore[misc]
    return layer(x)
