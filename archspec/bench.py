"""Honest speed measurements: warm-up, repeated timed runs, and a matmul probe in the same process.

Efficiency is the model's achieved FLOP rate divided by the rate of a 1024×1024 matrix product
measured in the same process, on the same device and dtype, just before and just after the model's
timed runs: the practical ceiling of that machine at that time. The faster probe is kept, so one
that met a busy moment cannot flatter the model. The model's FLOPs are the plan's (see the README:
convolutions, linear layers, attention products, FFTs); a training step counts three times the
forward FLOPs (forward, and backward for inputs and weights).

Timings come from :class:`torch.utils.benchmark.Timer` (see :func:`measure`): each measurement is
the mean of a block of back-to-back runs, and the median, min and max are taken over measurements.

Each result records whether :func:`archspec.accel.retain_freed_memory` was in force, since on
glibc it can change CPU timings by a third.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.benchmark import Measurement, Timer

from archspec.accel import freed_memory_retained, release_free_memory
from archspec.nn.features import output_tensors
from archspec.nodes import Plan
from archspec.runtime import machine_description
from archspec.tables import markdown_table, text_table

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class Result:
    spec: str
    batch: int
    mode: str
    device: str
    dtype: str
    threads: int
    median_ms: float
    min_ms: float
    max_ms: float
    measurements: int
    runs_per_measurement: int
    images_per_s: float
    gflops_per_s: float
    matmul_gflops_per_s: float
    efficiency: float
    peak_memory_mib: float | None
    malloc: str = "system"
    compile_s: float | None = None
    machine: str = ""
    """The CPU (or GPU), its bfloat16 capability, the threads and torch's version (see
    :func:`archspec.runtime.machine_description`)."""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


MIN_RUN_TIME = 0.2
"""Seconds that :func:`measure` spends timing at least, whatever ``repeats`` asks for."""


def _clock(device: torch.device) -> Callable[[], float]:
    """The Timer's clock. On CUDA it first waits for ``device``'s queued work: the Timer's own clock
    waits for the current accelerator, which need not be the device measured (``cuda:1``)."""

    def clock() -> float:
        _sync(device)
        return time.perf_counter()

    return clock


def measure(fn: Callable[[], object], device: torch.device, repeats: int) -> Measurement:
    """Time ``fn`` on ``device`` with :class:`torch.utils.benchmark.Timer`, at torch's current thread count.

    ``Timer.timeit(1)`` first times one call (after two untimed ones) to learn how long a call takes.
    ``Timer.blocked_autorange`` then chooses a block size (it calls ``fn`` at least once more, untimed)
    so that the clock's own cost, CUDA synchronisation included, is under 0.01% of a block, and times
    blocks of that many back-to-back calls until it has spent ``repeats`` times that length (and at
    least :data:`MIN_RUN_TIME`). The clock costs about a microsecond, so a call of more than about
    10 ms makes blocks of one call: ``repeats`` measurements of one call each, or one or two more
    (more still while ``repeats`` calls take less than :data:`MIN_RUN_TIME`). Faster calls are
    averaged in blocks of 10, 100, ... calls. The returned :class:`Measurement`'s ``times`` are the
    seconds per call of each block, its ``median`` their median and ``number_per_run`` the block size.
    """
    timer = Timer(stmt="fn()", globals={"fn": fn}, timer=_clock(device), num_threads=torch.get_num_threads())
    call = timer.timeit(1).median
    return timer.blocked_autorange(min_run_time=max(repeats * call, MIN_RUN_TIME))


def _autocast(device: torch.device, dtype: str) -> contextlib.AbstractContextManager[Any]:
    if dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[dtype])


def matmul_rate(device: torch.device, dtype: str, size: int = 1024, repeats: int = 20) -> float:
    """FLOP/s of a ``size``×``size`` matrix product on ``device``, from the median of :func:`measure`."""
    a = torch.randn(size, size, device=device, dtype=DTYPES[dtype])
    b = torch.randn(size, size, device=device, dtype=DTYPES[dtype])
    return 2 * size**3 / measure(lambda: a @ b, device, repeats).median


@contextlib.contextmanager
def _peak_memory(device: torch.device) -> Iterator[list[float | None]]:
    """Yields a one-item list that holds the peak memory in MiB once the block ends (None if unknown).

    On CUDA this is the allocator's peak; on Linux CPUs the process's peak resident set, reset first
    through /proc/self/clear_refs after free memory is handed back to the OS.
    """
    box: list[float | None] = [None]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        yield box
        box[0] = torch.cuda.max_memory_allocated(device) / 2**20
        return
    status = Path("/proc/self/status")
    release_free_memory()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        yield box
        return
    yield box
    for line in status.read_text().splitlines():
        if line.startswith("VmHWM:"):
            box[0] = int(line.split()[1]) / 1024


def _step(model: nn.Module, x: torch.Tensor, train: bool, optimizer: torch.optim.Optimizer | None) -> None:
    if not train:
        model(x)
        return
    assert optimizer is not None
    out = model(x)
    loss = sum(o.float().logsumexp(dim=-1).mean() for o in output_tensors(out))  # logits, or a backbone's maps
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def run(
    plan: Plan,
    label: str,
    batch: int,
    device: str = "cpu",
    retain_memory: bool = False,
    grad_checkpointing: bool = False,
    **options: Any,
) -> Result:
    """Build what ``plan``'s spec declares (a backbone when it has ``features:``) and measure one
    configuration; ``retain_memory`` is :func:`archspec.builder.build`'s, ``grad_checkpointing``
    calls the model's ``set_grad_checkpointing``, and ``options`` are :func:`time_model`'s."""
    from archspec.models import build_declared, declared_cost

    model = build_declared(plan, device=device, retain_memory=retain_memory)
    if grad_checkpointing:
        model.set_grad_checkpointing(True)
    return time_model(model, plan.input.dims, declared_cost(plan)[1], label, batch, device, **options)


def time_model(
    model: nn.Module,
    sample: tuple[int, ...],
    flops_per_sample: int,
    label: str,
    batch: int,
    device: str = "cpu",
    dtype: str = "float32",
    threads: int | None = None,
    compile: bool = False,
    train: bool = False,
    warmup: int = 3,
    repeats: int = 10,
) -> Result:
    """Measure any module taking a (batch, *sample) input, such as a hand-written model to compare with.

    ``warmup`` untimed steps come first (the first one compiles, with ``compile``); then
    :func:`measure` times the step with ``repeats``. The matmul probe is measured the same way.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    model = model.to(dev).train(train)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4) if train else None
    runner: nn.Module = torch.compile(model, dynamic=False) if compile else model  # type: ignore[assignment]
    compile_s = None
    x = torch.randn(batch, *sample, device=dev)
    grad = contextlib.nullcontext() if train else torch.inference_mode()
    with grad, _autocast(dev, dtype):
        start = time.perf_counter()
        _step(runner, x, train, optimizer)
        _sync(dev)
        if compile:
            compile_s = time.perf_counter() - start
        for _ in range(warmup - 1):
            _step(runner, x, train, optimizer)
        probe = matmul_rate(dev, dtype)
        with _peak_memory(dev) as peak:
            # the trim gave memory back: measure's untimed first calls fetch it again
            timed = measure(lambda: _step(runner, x, train, optimizer), dev, repeats)
        probe = max(probe, matmul_rate(dev, dtype))
    median = timed.median
    flops = flops_per_sample * batch * (3 if train else 1)
    return Result(
        spec=label,
        batch=batch,
        mode=("compiled" if compile else "eager")
        + (" train" if train else "")
        + (" checkpointed" if train and getattr(model, "grad_checkpointing", False) else ""),
        device=str(dev),
        dtype=dtype,
        threads=torch.get_num_threads(),
        median_ms=median * 1e3,
        min_ms=min(timed.times) * 1e3,
        max_ms=max(timed.times) * 1e3,
        measurements=len(timed.times),
        runs_per_measurement=timed.number_per_run,
        images_per_s=batch / median,
        gflops_per_s=flops / median / 1e9,
        matmul_gflops_per_s=probe / 1e9,
        efficiency=flops / median / probe,
        peak_memory_mib=peak[0],
        malloc="retain" if freed_memory_retained() else "system",
        compile_s=compile_s,
        machine=machine_description(str(dev), torch.get_num_threads()),
    )


HEADER = ["spec", "batch", "mode", "dtype", "malloc", "ms (median, min–max)", "img/s", "GFLOP/s", "matmul GFLOP/s",
          "efficiency", "peak MiB"]  # fmt: skip


def table(results: list[Result], markdown: bool = True) -> str:
    """The results as a Markdown table, or with ``markdown=False`` as a plain-text one."""
    rows = []
    for r in results:
        peak = f"{r.peak_memory_mib:,.0f}" if r.peak_memory_mib is not None else "–"
        timing = f"{r.median_ms:.1f} ({r.min_ms:.1f}–{r.max_ms:.1f})"
        rates = [
            f"{r.images_per_s:.1f}",
            f"{r.gflops_per_s:.1f}",
            f"{r.matmul_gflops_per_s:.1f}",
            f"{r.efficiency:.0%}",
        ]
        rows.append([f"`{r.spec}`", str(r.batch), r.mode, r.dtype, r.malloc, timing, *rates, peak])
    right = {1, *range(5, len(HEADER))}
    return markdown_table(HEADER, rows, right) if markdown else text_table(HEADER, rows, right)


def as_dicts(results: list[Result]) -> list[dict[str, Any]]:
    return [asdict(r) for r in results]
