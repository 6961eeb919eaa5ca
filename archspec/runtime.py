"""What the machine can do fast: native bfloat16 kernels, for the default training precision and for
warnings before slow work.

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


def native_bfloat16(device: str) -> bool:
    """Whether ``device`` computes bfloat16 at full speed: a CUDA GPU that supports it, or a CPU with
    AVX512-BF16 or AMX (:func:`cpu_has_native_bfloat16`). Any other device: False."""
    import torch

    kind = torch.device(device).type
    if kind == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return kind == "cpu" and cpu_has_native_bfloat16()


def default_precision(device: str) -> str:
    """The precision ``fit``, ``sweep --fit`` and ``search`` train in unless told: ``bf16-mixed`` (float32
    parameters, bfloat16 autocast) where the device has native bfloat16, ``fp32`` elsewhere."""
    return "bf16-mixed" if native_bfloat16(device) else "fp32"


def _cpuinfo(field: str) -> str | None:
    """The value of the first ``field`` line of ``/proc/cpuinfo``, or None (not Linux, or no such line)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith(field):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_name() -> str:
    """The CPU's model name as ``/proc/cpuinfo`` gives it, or the platform's word for it elsewhere."""
    import platform

    return _cpuinfo("model name") or platform.processor() or platform.machine() or "unknown CPU"


def bfloat16_capability() -> str:
    """What the CPU offers for bfloat16, in words: the instruction sets it reports and whether oneDNN uses them."""
    flags = set((_cpuinfo("flags") or "").split())
    sets = [name for flag, name in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX512-BF16")) if flag in flags]
    if cpu_has_native_bfloat16():
        return f"native bfloat16 ({' and '.join(sets) or 'as oneDNN reports'})"
    return "no native bfloat16" + (f" (the CPU reports {' and '.join(sets)})" if sets else "")


def machine_description(device: str = "cpu", threads: int | None = None) -> str:
    """One line naming what a benchmark ran on: the CPU (or GPU), its bfloat16 capability, the CPU threads
    and torch's version."""
    import torch

    count = torch.get_num_threads() if threads is None else threads
    cpu = f"{cpu_name()}, {bfloat16_capability()}, {count} thread{'s' * (count != 1)}"
    where = torch.device(device)
    if where.type == "cuda" and torch.cuda.is_available():
        bf16 = "native bfloat16" if torch.cuda.is_bf16_supported() else "no bfloat16"
        gpu = f"{torch.cuda.get_device_name(where)} ({bf16}, CUDA {torch.version.cuda})"
        return f"{gpu}; CPU {cpu}; torch {torch.__version__}"
    return f"{cpu}, torch {torch.__version__}"
