"""What the machine can do fast, for warnings before slow work: native bfloat16 kernels on the CPU.

(The speed paths themselves, freed-memory retention included, are :mod:`archspec.accel`'s.)
"""

from __future__ import annotations


def cpu_has_native_bfloat16() -> bool:
    """Whether oneDNN has native bfloat16 kernels on this CPU (AVX512-BF16 or AMX); torch is imported.

    Without them, bfloat16 autocast on the CPU falls back to slow reference kernels: a ResNet-18
    forward pass at batch 8 took 30 times as long as in float32 on an AVX2-only machine.
    """
    import torch

    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())  # type: ignore[no-untyped-call]


def bfloat16_warning(device: str) -> str | None:
    """The warning to give before bfloat16 work on ``device``, or None when there is nothing to say."""
    if device != "cpu" or cpu_has_native_bfloat16():
        return None
    return (
        "this CPU has no native bfloat16 kernels (no AVX512-BF16 or AMX), so bfloat16 autocast runs "
        "several times slower than float32 here"
    )
