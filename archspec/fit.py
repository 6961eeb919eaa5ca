"""Quick-fit: train a built model briefly on labelled images and report how well it learned.

:func:`adapt` turns a spec into the variant that fits the data (input channels, input size,
class count) as ``--set`` overrides; :func:`fit` trains it with AdamW, a linear warm-up and cosine
decay, evaluates it after every epoch and returns a :class:`FitResult`. The images come from
memory or are streamed from disk (:mod:`archspec.feed`); both give the same numbers.

Every source of randomness is a function of the seed: the weights (``build(seed=)``), the order of
the training images (torch's ``DistributedSampler``, seeded by seed and epoch), drop-path (the
global RNG) and augmentation (a generator of its own), both re-seeded from seed, epoch and rank at
the start of each epoch. So the same seed and thread count give the same numbers, and a run resumed
from its checkpoint continues exactly.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in ``DistributedDataParallel`` (gloo on
CPU, NCCL on CUDA) and each process trains on its shard of every epoch: ``batch`` is per process.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import resource
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import BatchSampler, DistributedSampler

from archspec.builder import build
from archspec.data import RESIZE_MODES, Catalog, Images, Split, from_arrays
from archspec.fit_state import EpochMetrics, FitError
from archspec.nodes import Plan
from archspec.optim import parameter_groups

if TYPE_CHECKING:
    from archspec.feed import Choice, Feed

__all__ = [
    "EpochMetrics", "FitConfig", "FitError", "FitResult", "adapt", "data_fingerprint", "evaluate", "fit",
    "format_result", "learning_rate", "parameter_groups", "resolve_precision", "total_stride",
]  # fmt: skip

PRECISIONS = {"fp32": None, "bf16-mixed": "bfloat16", "fp16-mixed": "float16"}
"""The precisions training runs in, and the dtype each computes in under autocast (None: no autocast)."""

AUTO = "auto"
"""The precision :class:`FitConfig` asks for by default: the device's own (:func:`resolve_precision`)."""

MAX_EPOCHS = 100_000
MAX_BATCH = 2**20


@dataclass(frozen=True)
class FitConfig:
    """What decides the numbers a run gives (the device and thread count aside); checked when made.

    Raises:
        FitError: (AS601) a value out of range, naming the command-line option that sets it.
    """

    epochs: int = 5
    batch: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.0
    seed: int = 0
    precision: str = AUTO
    """One of :data:`PRECISIONS`, or ``"auto"``: bfloat16 autocast where the device has native bfloat16,
    float32 elsewhere (a resumed run keeps the precision it was saved with)."""
    augment: bool = False
    resize: str = "crop"

    def __post_init__(self) -> None:
        for problem in self.problems():
            raise FitError(problem, "AS601")

    def problems(self) -> list[str]:
        found = []
        if not 1 <= self.epochs <= MAX_EPOCHS:
            found.append(f"--epochs {self.epochs}: must be from 1 to {MAX_EPOCHS:,}")
        if not 1 <= self.batch <= MAX_BATCH:
            found.append(f"--batch {self.batch}: must be from 1 to {MAX_BATCH:,}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            found.append(f"--lr {self.lr}: must be a finite number above 0")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            found.append(f"--wd {self.weight_decay}: must be a finite number of at least 0")
        elif self.lr * self.weight_decay >= 1:
            found.append(
                f"--wd {self.weight_decay:g} with --lr {self.lr:g}: AdamW scales every decayed weight by "
                f"1 − lr × wd each step, so lr × wd must stay below 1 (it is {self.lr * self.weight_decay:.3g})"
            )
        if not (math.isfinite(self.warmup_epochs) and 0 <= self.warmup_epochs <= self.epochs):
            found.append(f"--warmup-epochs {self.warmup_epochs:g}: must be from 0 to the run's {self.epochs} epochs")
        if not 0 <= self.label_smoothing < 1:
            found.append(f"--label-smoothing {self.label_smoothing:g}: must be at least 0 and below 1")
        if self.precision not in (AUTO, *PRECISIONS):
            found.append(f"--precision {self.precision}: must be one of {', '.join((AUTO, *PRECISIONS))}")
        if not 0 <= self.seed < 2**63:
            found.append(f"--seed {self.seed}: must be from 0 to 2**63 - 1")
        if self.resize not in RESIZE_MODES:
            found.append(f"--resize {self.resize!r}: must be one of {', '.join(RESIZE_MODES)}")
        return found


@dataclass
class FitResult:
    """A finished run: per-epoch metrics and the figures a user compares variants by."""

    history: list[EpochMetrics]
    wall_s: float
    train_samples_per_s: float
    peak_memory_bytes: int
    amp_dtype: str | None
    precision: str
    world_size: int
    device: str = "cpu"
    loader: str = ""
    """How the images were fed: held in memory or streamed, and why (:meth:`archspec.feed.Choice.describe`)."""
    start: str | None = None
    """What ``weights`` or ``init_from`` loaded, when given."""

    @property
    def final(self) -> EpochMetrics:
        return self.history[-1]

    @property
    def best(self) -> EpochMetrics:
        return max(self.history, key=lambda m: m.val_acc)  # the first of equals: max keeps it

    def as_dict(self) -> dict[str, Any]:
        return {
            "final_val_acc": self.final.val_acc,
            "final_val_loss": self.final.val_loss,
            "best_val_acc": self.best.val_acc,
            "best_epoch": self.best.epoch,
            "wall_s": self.wall_s,
            "train_samples_per_s": self.train_samples_per_s,
            "peak_memory_bytes": self.peak_memory_bytes,
            "amp_dtype": self.amp_dtype,
            "precision": self.precision,
            "world_size": self.world_size,
            "loader": self.loader,
            "start": self.start,
            "epochs": [asdict(m) for m in self.history],
        }


class _Data(Protocol):
    """What :func:`adapt` reads of the data: a :class:`Catalog` or :class:`Images`."""

    @property
    def channels(self) -> int: ...
    @property
    def size(self) -> tuple[int, int] | None: ...
    @property
    def classes(self) -> tuple[str, ...]: ...


def total_stride(plan: Plan) -> tuple[int, int]:
    """How many input pixels one cell of the last stage's grid covers, per axis."""
    grid = plan.stages[-1].out_shape.grid
    assert grid is not None, "the last stage of a plan has a grid"
    _, height, width = plan.input.dims
    return max(1, height // grid[0]), max(1, width // grid[1])


def adapt(plan: Plan, data: _Data, size: tuple[int, int] | None = None) -> list[str]:
    """The ``--set`` overrides that fit ``plan`` to ``data``: channels, class count, and input size.

    Without ``size`` the input is the data's size rounded up to a multiple of the plan's total stride
    (8×8 digits go in at 32×32 for a stride of 32); images of several sizes go in at the spec's own
    input size. Only values that change are listed.
    """
    if plan.spec.features is not None:
        raise FitError(
            "fit trains a classifier, and this spec declares features: (a backbone); add --set features=null",
            "AS601",
        )
    channels, height, width = plan.input.dims
    if size is None and data.size is not None:
        strides = total_stride(plan)
        size = (
            math.ceil(data.size[0] / strides[0]) * strides[0],
            math.ceil(data.size[1] / strides[1]) * strides[1],
        )
    size = size or (height, width)
    overrides = []
    if data.channels != channels:
        overrides.append(f"input.channels={data.channels}")
    if size != (height, width):
        overrides.append(f"input.size={size[0]}" if size[0] == size[1] else f"input.size=[{size[0]}, {size[1]}]")
    if len(data.classes) != plan.num_classes:
        overrides.append(f"num_classes={len(data.classes)}")
    return overrides


def catalog_of(data: Catalog | Images) -> Catalog:
    """``data`` as a :class:`Catalog` (arrays in memory become one)."""
    if isinstance(data, Catalog):
        return data
    return from_arrays(data.x, data.y, data.classes, data.source)


def data_fingerprint(data: Catalog | Images, split: Split, size: tuple[int, int], resize: str) -> str:
    """A hash of the data (:meth:`Catalog.fingerprint`), the split, the input size and the resize mode,
    so a checkpoint is resumed only on the data it saw."""
    digest = hashlib.sha256(catalog_of(data).fingerprint().encode())
    for array in (split.train, split.val):
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(f"{size} {resize}".encode())
    return digest.hexdigest()[:16]


def learning_rate(step: int, total: int, warmup: int, peak: float) -> float:
    """Linear warm-up over ``warmup`` steps to ``peak``, then cosine decay to zero at ``total``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@dataclass(frozen=True)
class _World:
    size: int
    rank: int
    device: torch.device
    started: bool  # whether fit initialised the process group (and so tears it down)


def launch_problem(environ: dict[str, str] | os._Environ[str] = os.environ) -> str | None:
    """What is wrong with torchrun's variables in ``environ`` (``WORLD_SIZE`` without ``RANK``, ...), or None."""
    size, rank = environ.get("WORLD_SIZE"), environ.get("RANK")
    if size is None:
        return None if rank in (None, "0") else f"RANK={rank} is set but WORLD_SIZE is not"
    if not size.isascii() or not size.isdigit() or int(size) < 1:
        return f"WORLD_SIZE={size!r} is not a process count"
    if int(size) == 1:
        return None
    if rank is None:
        return f"WORLD_SIZE={size} is set but RANK is not"
    if not rank.isascii() or not rank.isdigit() or int(rank) >= int(size):
        return f"RANK={rank!r} is not a process number below WORLD_SIZE={size}"
    return None


LAUNCH_HINT = "start several processes with torchrun, which sets both, or unset them for one process"


def _world(device: str | torch.device) -> _World:
    """One process, or torchrun's group: joined here if ``WORLD_SIZE`` > 1 and nobody joined it yet."""
    device = torch.device(device)
    started = False
    if not dist.is_initialized() and (problem := launch_problem()) is not None:
        raise FitError(f"{problem}: {LAUNCH_HINT}", "AS601")
    if not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        started = True
    if not dist.is_initialized():
        return _World(1, 0, device, started)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return _World(dist.get_world_size(), dist.get_rank(), device, started)


def resolve_precision(precision: str, device: str | torch.device, resume: str | Path | None = None) -> str:
    """The precision a run with ``precision`` trains in on ``device``: itself, unless it is ``"auto"``.

    ``"auto"`` is the precision the run being resumed was saved with, or else the device's default
    (:func:`archspec.runtime.default_precision`: ``bf16-mixed`` on a CUDA GPU with bfloat16 or a CPU
    with AVX512-BF16 or AMX, ``fp32`` elsewhere).
    """
    if precision != AUTO:
        return precision
    if resume is not None:
        from archspec.fit_state import saved_precision

        if (saved := saved_precision(resume)) in PRECISIONS:
            return str(saved)
    from archspec.runtime import default_precision

    return default_precision(str(device))


def _amp_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype autocast computes in for ``precision`` on ``device``; None for float32 training."""
    name = PRECISIONS[precision]
    if name == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise FitError(f"--precision {precision}: this GPU has no bfloat16; use --precision fp16-mixed", "AS601")
    return None if name is None else getattr(torch, name)


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + rank) % 2**63


def _peak_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


@torch.inference_mode()
def evaluate(model: nn.Module, feed: Feed, mean: torch.Tensor, std: torch.Tensor, autocast: Any) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` (in eval mode) on the feed's validation images."""
    was_training = model.training
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    for raw, target in feed.val_batches():
        with autocast():
            logits = model(feed.normalised(raw, mean, std)).float()
        loss_sum += F.cross_entropy(logits, target, reduction="sum").item()
        correct += int((logits.argmax(dim=1) == target).sum())
        count += len(target)
    model.train(was_training)
    return loss_sum / count, correct / count


def fit(
    plan: Plan,
    data: Catalog | Images,
    split: Split,
    config: FitConfig = FitConfig(),
    device: str | torch.device = "cpu",
    save: str | Path | None = None,
    resume: str | Path | None = None,
    log: str | Path | None = None,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
    on_step: Callable[[int, int, int], None] | None = None,
    *,
    on_start: Callable[[str], None] | None = None,
    loader: str | Choice = "auto",
    workers: int | None = None,
    weights: str | Path | None = None,
    init_from: str | Path | None = None,
    force: bool = False,
) -> FitResult:
    """Train the model ``plan`` describes on ``data`` (split by ``split``) and evaluate it every epoch.

    Args:
        plan: an adapted plan (see :func:`adapt`): its input and class count fit the data.
        data: a :class:`archspec.data.Catalog` (``archspec.data.scan``) or images in memory.
        config: the optimiser, schedule, augmentation, resize mode, seed and precision (``auto``, the
            default: bfloat16 autocast where the device has native bfloat16, float32 elsewhere).
        save: a checkpoint written (atomically) after every epoch: weights, spec and fingerprints as
            ``archspec build --weights`` reads them, plus the optimiser state and history under ``"fit"``.
        resume: a checkpoint of this same run to continue from; refused if its spec, data or config
            differ, or if its training state fails a check (:mod:`archspec.fit_state`).
        log: a file rewritten (atomically) after every epoch with one JSON line of metrics per epoch
            (those of a resumed run's earlier epochs too), after the epoch's checkpoint is saved.
        on_epoch, on_step: progress callbacks, called on the first process only; ``on_epoch`` after
            the epoch's checkpoint and log are written, ``on_step(epoch, step, steps)`` after every
            optimiser step.
        on_start: called (first process only) with what ``weights`` or ``init_from`` loaded, before training.
        loader: ``"memory"``, ``"stream"`` or ``"auto"`` (see :func:`archspec.feed.choose`), or its choice.
        workers: DataLoader worker processes for streaming (default: one per core, at most 8).
        weights: a checkpoint to start from, loaded strictly but for the classifier, which starts
            fresh when its shape differs (archspec's own, or a reference layout, converted).
        init_from: a checkpoint to warm-start from: every tensor whose name and shape fit is copied.
        force: let ``save`` and ``log`` replace files that exist (a ``save`` that is ``resume`` always may).

    Raises:
        FitError: the loss or the weights became NaN or infinite (AS1002), ``resume`` belongs to another
            run or fails a check (AS1003), or an option is out of range (AS601).
        OutputError: a checkpoint or the log could not be written; the message says what was saved.
    """
    if resume is not None and (weights is not None or init_from is not None):
        raise FitError("resume continues a run; weights and init_from start a new one: give one or the other", "AS601")
    world = _world(device)
    config = replace(config, precision=resolve_precision(config.precision, world.device, resume))
    try:
        return _fit(
            plan, catalog_of(data), split, config, world, save, resume, log, on_epoch, on_step, on_start,
            loader, workers, weights, init_from, force,
        )  # fmt: skip
    finally:
        if world.started:
            dist.destroy_process_group()


def _start(model: nn.Module, weights: str | Path | None, init_from: str | Path | None) -> str | None:
    """Load ``weights`` (strictly, the classifier aside) or warm-start from ``init_from``; returns the report."""
    from archspec.checkpoint import load_state, located, read_file, to_model_names, unwrap, warm_start

    if init_from is not None:
        checkpoint = read_file(init_from)
        with located(init_from):
            return f"warm start from {init_from}: {warm_start(model, checkpoint).report()}"
    if weights is None:
        return None
    checkpoint = read_file(weights)
    classifier = getattr(model, "classifier_name", lambda: "")()
    with located(weights):
        converted, layout = to_model_names(model, unwrap(checkpoint))
        expected = model.state_dict()
        head = [key for key in expected if classifier and key.startswith(classifier + ".")]
        fresh = [key for key in head if key not in converted or converted[key].shape != expected[key].shape]
        load_state(model, checkpoint, reinit=(classifier,) if fresh else ())
    source = f" (converted from the {layout} layout)" if layout else ""
    new_head = f"; the classifier {classifier} starts fresh (the checkpoint's has another shape)" if fresh else ""
    return f"loaded {weights}{source}{new_head}"


def _fit(
    plan: Plan,
    catalog: Catalog,
    split: Split,
    config: FitConfig,
    world: _World,
    save: str | Path | None,
    resume: str | Path | None,
    log: str | Path | None,
    on_epoch: Callable[[EpochMetrics], None] | None,
    on_step: Callable[[int, int, int], None] | None,
    on_start: Callable[[str], None] | None,
    loader: str | Choice,
    workers: int | None,
    weights: str | Path | None,
    init_from: str | Path | None,
    force: bool,
) -> FitResult:
    from archspec import feed as feeds
    from archspec.fit_state import restore
    from archspec.fit_state import save as save_state

    lead = world.rank == 0
    size = (plan.input.dims[1], plan.input.dims[2])
    batch = min(config.batch, max(1, len(split.train)))
    choice = loader if isinstance(loader, feeds.Choice) else feeds.choose(catalog, size, plan, batch, loader, workers)
    feed: Feed
    if choice.kind == "memory":
        feed = feeds.MemoryFeed(catalog, split, size, config.resize, world.device)
    else:
        feed = feeds.StreamFeed(catalog, split, size, config.resize, world.device, choice.workers)
    mean, std = feed.statistics()
    stats = {"mean": mean.flatten().tolist(), "std": std.flatten().tolist()}

    model = build(plan, device=world.device, seed=config.seed)
    start_report = _start(model, weights, init_from)
    if start_report is not None and on_start is not None and lead:
        on_start(start_report)
    # torch's fused AdamW updates every parameter in one kernel call instead of a dozen per parameter:
    # on the CPU that removed 15-25% of a quick-fit step. A resumed run keeps what its checkpoint used.
    fused = world.device.type in ("cpu", "cuda")
    optimizer = torch.optim.AdamW(parameter_groups(model, config.weight_decay), lr=config.lr, fused=fused)
    amp_dtype = _amp_dtype(config.precision, world.device)
    scaler = torch.amp.GradScaler(world.device.type, enabled=amp_dtype is torch.float16)

    def autocast() -> Any:
        if amp_dtype is None:
            return nullcontext()
        return torch.autocast(world.device.type, dtype=amp_dtype)

    sampler: DistributedSampler[int] = DistributedSampler(
        range(len(split.train)),  # type: ignore[arg-type]  # any sized sequence of positions
        num_replicas=world.size, rank=world.rank, shuffle=True, seed=config.seed,
    )  # fmt: skip
    steps = math.ceil(len(sampler) / config.batch)
    total, warmup = config.epochs * steps, max(1, round(config.warmup_epochs * steps))
    run = {
        **asdict(config),
        "world_size": world.size,
        "data": data_fingerprint(catalog, split, size, config.resize),
        "input": list(plan.input.dims),
    }

    history: list[EpochMetrics] = []
    clock: dict[str, float] = {"elapsed": 0.0, "train_time": 0.0, "trained": 0}
    if resume is not None:
        history, clock = restore(resume, plan, model, optimizer, scaler, run, steps, len(split.val))
    same_file = save is not None and resume is not None and Path(save) == Path(resume)
    replace = {"save": force or same_file, "log": force}
    if log is not None and lead and history:
        _write_log(log, history, replace["log"], None)
        replace["log"] = True

    runner: nn.Module = model
    if world.size > 1:
        devices = [world.device.index] if world.device.type == "cuda" else None
        runner = nn.parallel.DistributedDataParallel(model, device_ids=devices)
    model.train()
    augmenter = torch.Generator()
    for epoch in range(len(history), config.epochs):
        sampler.set_epoch(epoch)
        torch.manual_seed(_epoch_seed(config.seed, epoch, world.rank))
        augmenter.manual_seed(_epoch_seed(config.seed, epoch, world.rank))
        start = time.perf_counter()
        totals = torch.zeros(2, dtype=torch.float64, device=world.device)  # summed loss, images
        positions = list(BatchSampler(sampler, config.batch, drop_last=False))
        for step, (raw, target) in enumerate(feed.train_batches(positions)):
            x = feed.normalised(raw, mean, std)
            if config.augment:
                from archspec.augment import crop_and_flip

                x = crop_and_flip(x, augmenter)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(epoch * steps + step, total, warmup, config.lr)
            with autocast():
                loss = F.cross_entropy(runner(x), target, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            scaled: Any = scaler.scale(loss)  # torch leaves Tensor.backward untyped
            scaled.backward()
            _check_finite(loss, world, epoch, step)
            try:
                scaler.step(optimizer)
            except RuntimeError as exc:  # a learning rate past float32's range, say
                raise FitError(
                    f"the optimiser step failed in epoch {epoch + 1}, step {step + 1} ({str(exc).splitlines()[0]}): "
                    "the run diverged (try a lower --lr)"
                ) from None
            scaler.update()
            count = torch.tensor(len(target), device=world.device)
            totals += torch.stack([loss.detach().double() * len(target), count])
            if on_step is not None and lead:
                on_step(epoch, step + 1, steps)
        train_seconds = time.perf_counter() - start
        if world.size > 1:  # the epoch's loss over every process's images
            dist.all_reduce(totals)
        _check_weights(model, epoch)
        seen = int(totals[1])
        val_loss, val_acc = evaluate(model, feed, mean, std, autocast)
        seconds = time.perf_counter() - start
        clock = {
            "elapsed": clock["elapsed"] + seconds,
            "train_time": clock["train_time"] + train_seconds,
            "trained": clock["trained"] + seen,
        }
        train_loss = float(totals[0]) / seen
        metrics = EpochMetrics(
            epoch + 1, train_loss, val_loss, val_acc, optimizer.param_groups[0]["lr"], seconds,
            seen / max(train_seconds, 1e-9),
        )  # fmt: skip
        history.append(metrics)
        if lead:
            if save is not None:
                save_state(save, model, plan, optimizer, scaler, run, history, clock, stats, replace["save"])
                replace["save"] = True
            if log is not None:
                _write_log(log, history, replace["log"], save)
                replace["log"] = True
            if on_epoch is not None:
                on_epoch(metrics)
    return FitResult(
        history,
        wall_s=clock["elapsed"],
        train_samples_per_s=clock["trained"] / max(clock["train_time"], 1e-9),
        peak_memory_bytes=_peak_memory(world.device),
        amp_dtype=str(amp_dtype).removeprefix("torch.") if amp_dtype is not None else None,
        precision=config.precision,
        world_size=world.size,
        device=world.device.type,
        loader=choice.describe(),
        start=start_report,
    )


def _check_finite(loss: torch.Tensor, world: _World, epoch: int, step: int) -> None:
    finite = torch.isfinite(loss.detach()).to(torch.int32)
    if world.size > 1:  # every process stops together, or the others would wait for it forever
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    if not finite:
        raise FitError(
            f"the training loss became {float(loss.detach()):.4g} in epoch {epoch + 1}, step {step + 1}: "
            "the run diverged (try a lower --lr or a longer warm-up)"
        )


def _check_weights(model: nn.Module, epoch: int) -> None:
    """Stop a run whose weights are no longer finite (the epoch's last step can break them after its loss was seen)."""
    bad = [name for name, p in model.named_parameters() if not bool(torch.isfinite(p.detach()).all())]
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise FitError(
            f"the weights became NaN or infinite in epoch {epoch + 1} ({bad[0]}{more}): "
            "the run diverged (try a lower --lr or --wd)"
        )


def _write_log(path: str | Path, history: Sequence[EpochMetrics], force: bool, saved: str | Path | None) -> None:
    """Rewrite the log with every epoch so far; a failed write says what the checkpoint holds."""
    from archspec.output import OutputError, write_text_atomic

    text = "".join(json.dumps(asdict(m)) + "\n" for m in history)
    try:
        write_text_atomic(path, text, force=force)
    except OutputError as exc:
        kept = f"; {saved} holds epoch {history[-1].epoch}" if saved is not None else ""
        raise type(exc)(f"{exc}{kept}") from None


def format_result(plan: Plan, result: FitResult, markdown: bool = False) -> str:
    """The figures of a finished run as a two-column table: plain text, or Markdown."""
    from archspec.tables import markdown_table, text_table

    final, best = result.final, result.best
    memory = "peak CUDA memory allocated" if result.device == "cuda" else "peak resident memory"
    rows = [
        ("model", f"{plan.name}: {plan.params:,} params, {plan.flops / 1e9:.3f} GFLOPs at {plan.input} (C×H×W)"),
        ("final val acc", f"{final.val_acc:.2%} (epoch {final.epoch})"),
        ("best val acc", f"{best.val_acc:.2%} (epoch {best.epoch})"),
        ("final val loss", f"{final.val_loss:.4f}"),
        ("final train loss", f"{final.train_loss:.4f}"),
        ("wall time", f"{result.wall_s:.1f} s for {len(result.history)} epoch{'s' if len(result.history) > 1 else ''}"),
        ("training speed", f"{result.train_samples_per_s:.0f} images/s"),
        (memory, f"{result.peak_memory_bytes / 2**20:.0f} MiB"),
    ]
    if result.world_size > 1:
        rows.append(("processes", str(result.world_size)))
    rows.append(("precision", result.precision))
    return markdown_table(("figure", "value"), rows) if markdown else text_table(("figure", "value"), rows)
