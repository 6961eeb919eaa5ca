"""``nn.Linear`` with a faster CPU inference path: oneDNN's matrix product with the bias fused in.

``F.linear`` on a CPU first copies the bias into every row of the output and then accumulates the
product onto it, one extra pass over the largest activations of a block (SpectFormer-H-S's first
FFN writes 8 × 3136 × 512 floats per batch of 8). oneDNN adds the bias as it writes each output
tile. The path is taken only where it computes the same function and nothing depends on how:
float32 CPU tensors with autograd off, no autocast, and no tracer (``torch.compile``,
``torch.export`` and ONNX export see ``F.linear``). Results differ from ``F.linear`` by float
rounding only. Parameters, state-dict keys and the printed name are ``nn.Linear``'s.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_fused = getattr(torch.ops.mkldnn, "_linear_pointwise", None) if torch.backends.mkldnn.is_available() else None  # type: ignore[no-untyped-call]


def _takes_fast_path(x: torch.Tensor, weight: torch.Tensor) -> bool:
    return (
        _fused is not None
        and not torch.is_grad_enabled()
        and x.device.type == "cpu"
        and x.dtype == weight.dtype == torch.float32
        and type(x) is torch.Tensor
        and type(weight) in (nn.Parameter, torch.Tensor)
        and not torch.is_autocast_enabled("cpu")
        and not torch.compiler.is_compiling()
    )


class Linear(nn.Linear):
    """``nn.Linear``; see the module docstring for when the fused oneDNN kernel runs instead."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _takes_fast_path(x, self.weight):
            return _fused(x, self.weight, self.bias, "none", [], "")  # type: ignore[misc]
        return F.linear(x, self.weight, self.bias)

    def _get_name(self) -> str:
        return "Linear"
