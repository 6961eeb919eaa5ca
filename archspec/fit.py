"""Quick-fit: train a built model briefly on labelled images and report how well it learned.

:func:`adapt` turns a spec into the variant that fits the data (input channels, input size,
class count) as ``--set`` overrides; :func:`fit` trains it with AdamW, a linear warm-up and cosine
decay, evaluates it after every epoch and returns a :class:`FitResult`.

Every source of randomness is a function of the seed: the weights (``build(seed=)``), the order of
the training images (torch's ``DistributedSampler``, seeded by seed and epoch) and drop-path (the
global RNG, re-seeded from seed, epoch and rank at the start of each epoch). So the same seed and
thread count give the same numbers, and a run resumed from its checkpoint continues exactly.

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
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import BatchSampler, DistributedSampler, TensorDataset

from archspec.builder import build
from archspec.data import Images, Split
from archspec.errors import ArchspecError
from archspec.nodes import Plan

CHECKPOINT_KEY = "fit"
EVAL_BATCH = 256


class FitError(ArchspecError):
    """Training that cannot start or go on: a backbone spec, a diverging loss (AS1002), a checkpoint that
    belongs to another run (AS1003)."""

    def __init__(self, message: str, code: str = "AS1002") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class FitConfig:
    """What decides the numbers a run gives (the device and thread count aside)."""

    epochs: int = 5
    batch: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.0
    seed: int = 0
    amp: bool = False


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    train_loss: float
    val_loss: float
    val_acc: float
    lr: float
    seconds: float
    samples_per_s: float


@dataclass
class FitResult:
    """A finished run: per-epoch metrics and the figures a user compares variants by."""

    history: list[EpochMetrics]
    wall_s: float
    train_samples_per_s: float
    peak_memory_bytes: int
    amp_dtype: str | None
    world_size: int
    device: str = "cpu"

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
            "world_size": self.world_size,
            "epochs": [asdict(m) for m in self.history],
        }


def total_stride(plan: Plan) -> tuple[int, int]:
    """How many input pixels one cell of the last stage's grid covers, per axis."""
    grid = plan.stages[-1].out_shape.grid
    assert grid is not None, "the last stage of a plan has a grid"
    _, height, width = plan.input.dims
    return max(1, height // grid[0]), max(1, width // grid[1])


def adapt(plan: Plan, images: Images, size: tuple[int, int] | None = None) -> list[str]:
    """The ``--set`` overrides that fit ``plan`` to ``images``: channels, class count, and input size.

    Without ``size`` the input is the data's size rounded up to a multiple of the plan's total stride
    (8×8 digits go in at 32×32 for a stride of 32). Only values that change are listed.
    """
    if plan.spec.features is not None:
        raise FitError(
            "fit trains a classifier, and this spec declares features: (a backbone); add --set features=null",
            "AS601",
        )
    channels, height, width = plan.input.dims
    if size is None:
        strides = total_stride(plan)
        size = (
            math.ceil(images.size[0] / strides[0]) * strides[0],
            math.ceil(images.size[1] / strides[1]) * strides[1],
        )
    overrides = []
    if images.channels != channels:
        overrides.append(f"input.channels={images.channels}")
    if size != (height, width):
        overrides.append(f"input.size={size[0]}" if size[0] == size[1] else f"input.size=[{size[0]}, {size[1]}]")
    if len(images.classes) != plan.num_classes:
        overrides.append(f"num_classes={len(images.classes)}")
    return overrides


def data_fingerprint(images: Images, split: Split) -> str:
    """A hash of the pixels, labels and split, so a checkpoint is resumed only on the data it saw."""
    digest = hashlib.sha256()
    for array in (images.x, images.y, split.train, split.val):
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def learning_rate(step: int, total: int, warmup: int, peak: float) -> float:
    """Linear warm-up over ``warmup`` steps to ``peak``, then cosine decay to zero at ``total``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices and kernels only; biases, norm scales and position embeddings' vectors go free."""
    decay: list[nn.Parameter] = []
    free: list[nn.Parameter] = []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim >= 2 else free).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": free, "weight_decay": 0.0}]


@dataclass(frozen=True)
class _World:
    size: int
    rank: int
    device: torch.device
    started: bool  # whether fit initialised the process group (and so tears it down)


def _world(device: str | torch.device) -> _World:
    """One process, or torchrun's group: joined here if ``WORLD_SIZE`` > 1 and nobody joined it yet."""
    device = torch.device(device)
    started = False
    if not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        started = True
    if not dist.is_initialized():
        return _World(1, 0, device, started)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return _World(dist.get_world_size(), dist.get_rank(), device, started)


def _amp_dtype(device: torch.device) -> torch.dtype:
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def _prepared(images: Images, split: Split, input_dims: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """Images scaled to the model's input size, normalised per channel with the training images' statistics."""
    x = torch.from_numpy(images.x)
    size = tuple(input_dims[1:])
    if tuple(x.shape[2:]) != size:
        shrinking = size[0] < x.shape[2] or size[1] < x.shape[3]
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrinking)
    train = x[torch.from_numpy(split.train)]
    mean = train.mean(dim=(0, 2, 3), keepdim=True)
    std = train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    stats = {"mean": mean.flatten().tolist(), "std": std.flatten().tolist()}
    return (x - mean) / std, torch.from_numpy(images.y), stats


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + rank) % 2**63


def _peak_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


@torch.inference_mode()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, autocast: Any) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` (in eval mode) on ``x``, ``y``."""
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    for start in range(0, len(x), EVAL_BATCH):
        with autocast():
            logits = model(x[start : start + EVAL_BATCH]).float()
        target = y[start : start + EVAL_BATCH]
        loss_sum += F.cross_entropy(logits, target, reduction="sum").item()
        correct += int((logits.argmax(dim=1) == target).sum())
    model.train(was_training)
    return loss_sum / len(x), correct / len(x)


def fit(
    plan: Plan,
    images: Images,
    split: Split,
    config: FitConfig = FitConfig(),
    device: str | torch.device = "cpu",
    save: str | Path | None = None,
    resume: str | Path | None = None,
    log: TextIO | None = None,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
    on_step: Callable[[int, int, int], None] | None = None,
) -> FitResult:
    """Train the model ``plan`` describes on ``images`` (split by ``split``) and evaluate it every epoch.

    Args:
        plan: an adapted plan (see :func:`adapt`): its input and class count fit the data.
        config: the optimiser, schedule and seed.
        save: a checkpoint written (atomically) after every epoch: weights, spec and fingerprints as
            ``archspec build --weights`` reads them, plus the optimiser state and history under ``"fit"``.
        resume: a checkpoint of this same run to continue from; refused if its spec, data or config differ.
        log: a text stream that gets one JSON line of metrics per epoch (those already done when resuming).
        on_epoch, on_step: progress callbacks, called on the first process only; ``on_step(epoch,
            step, steps)`` after every optimiser step.

    Raises:
        FitError: the loss became NaN or infinite (AS1002), or ``resume`` belongs to another run (AS1003).
    """
    world = _world(device)
    try:
        return _fit(plan, images, split, config, world, save, resume, log, on_epoch, on_step)
    finally:
        if world.started:
            dist.destroy_process_group()


def _fit(
    plan: Plan,
    images: Images,
    split: Split,
    config: FitConfig,
    world: _World,
    save: str | Path | None,
    resume: str | Path | None,
    log: TextIO | None,
    on_epoch: Callable[[EpochMetrics], None] | None,
    on_step: Callable[[int, int, int], None] | None,
) -> FitResult:
    lead = world.rank == 0
    x, y, stats = _prepared(images, split, plan.input.dims)
    x, y = x.to(world.device), y.to(world.device)
    train_index = torch.from_numpy(split.train).to(world.device)
    val_index = torch.from_numpy(split.val).to(world.device)
    x_val, y_val = x[val_index], y[val_index]

    model = build(plan, device=world.device, seed=config.seed)
    optimizer = torch.optim.AdamW(parameter_groups(model, config.weight_decay), lr=config.lr)
    amp_dtype = _amp_dtype(world.device) if config.amp else None
    scaler = torch.amp.GradScaler(world.device.type, enabled=amp_dtype is torch.float16)

    def autocast() -> Any:
        if amp_dtype is None:
            return nullcontext()
        return torch.autocast(world.device.type, dtype=amp_dtype)

    sampler: DistributedSampler[Any] = DistributedSampler(
        TensorDataset(train_index), num_replicas=world.size, rank=world.rank, shuffle=True, seed=config.seed
    )
    steps = math.ceil(len(sampler) / config.batch)
    total, warmup = config.epochs * steps, max(1, round(config.warmup_epochs * steps))
    run = {
        **asdict(config),
        "world_size": world.size,
        "data": data_fingerprint(images, split),
        "input": list(plan.input.dims),
    }

    history: list[EpochMetrics] = []
    clock: dict[str, float] = {"elapsed": 0.0, "train_time": 0.0, "trained": 0}
    if resume is not None:
        history, clock = _restore(resume, plan, model, optimizer, scaler, run)
    for metrics in history:
        _write_log(log if lead else None, metrics)

    runner: nn.Module = model
    if world.size > 1:
        devices = [world.device.index] if world.device.type == "cuda" else None
        runner = nn.parallel.DistributedDataParallel(model, device_ids=devices)
    model.train()
    for epoch in range(len(history), config.epochs):
        sampler.set_epoch(epoch)
        torch.manual_seed(_epoch_seed(config.seed, epoch, world.rank))
        start = time.perf_counter()
        totals = torch.zeros(2, dtype=torch.float64, device=world.device)  # summed loss, images
        for step, batch in enumerate(BatchSampler(sampler, config.batch, drop_last=False)):
            index = train_index[torch.tensor(batch, device=world.device)]
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(epoch * steps + step, total, warmup, config.lr)
            with autocast():
                loss = F.cross_entropy(runner(x[index]), y[index], label_smoothing=config.label_smoothing)
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
            totals += torch.stack([loss.detach().double() * len(batch), torch.tensor(len(batch), device=world.device)])
            if on_step is not None and lead:
                on_step(epoch, step + 1, steps)
        train_seconds = time.perf_counter() - start
        if world.size > 1:  # the epoch's loss over every process's images
            dist.all_reduce(totals)
        seen = int(totals[1])
        val_loss, val_acc = evaluate(model, x_val, y_val, autocast)
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
            _write_log(log, metrics)
            if save is not None:
                _save(save, model, plan, optimizer, scaler, run, history, clock, stats)
            if on_epoch is not None:
                on_epoch(metrics)
    return FitResult(
        history,
        wall_s=clock["elapsed"],
        train_samples_per_s=clock["trained"] / max(clock["train_time"], 1e-9),
        peak_memory_bytes=_peak_memory(world.device),
        amp_dtype=str(amp_dtype).removeprefix("torch.") if amp_dtype is not None else None,
        world_size=world.size,
        device=world.device.type,
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


def _write_log(log: TextIO | None, metrics: EpochMetrics) -> None:
    if log is not None:
        log.write(json.dumps(asdict(metrics)) + "\n")
        log.flush()


def _save(
    path: str | Path,
    model: nn.Module,
    plan: Plan,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    run: Mapping[str, Any],
    history: Sequence[EpochMetrics],
    clock: Mapping[str, float],
    stats: Mapping[str, Any],
) -> None:
    from archspec.checkpoint import save_file

    state = {
        "run": dict(run),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "history": [asdict(m) for m in history],
        "clock": dict(clock),
        "normalize": dict(stats),
    }
    save_file(model, plan, path, force=True, extra={CHECKPOINT_KEY: state})


def _restore(
    path: str | Path,
    plan: Plan,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    run: Mapping[str, Any],
) -> tuple[list[EpochMetrics], dict[str, float]]:
    from archspec.checkpoint import check_spec, load_state, read_file

    checkpoint = read_file(path)
    state = checkpoint.get(CHECKPOINT_KEY)
    if not isinstance(state, Mapping):
        raise FitError(f"{path}: not a checkpoint of archspec fit --save (it holds no training state)", "AS1003")
    check_spec(checkpoint, plan, path)
    saved = state.get("run", {})
    changed = [f"{key}: {saved.get(key)!r} → {value!r}" for key, value in run.items() if saved.get(key) != value]
    if changed:
        raise FitError(
            f"{path}: saved by a different run; resuming continues the same data, options and process count "
            "exactly:\n  " + "\n  ".join(changed),
            "AS1003",
        )
    load_state(model, checkpoint)
    optimizer.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    names = {f.name for f in fields(EpochMetrics)}
    history = [EpochMetrics(**{k: v for k, v in m.items() if k in names}) for m in state["history"]]
    return history, {key: float(value) for key, value in state["clock"].items()}


def format_result(plan: Plan, result: FitResult) -> str:
    """The figures of a finished run as a two-column table."""
    from archspec.tables import text_table

    final, best = result.final, result.best
    memory = "peak CUDA memory allocated" if result.device == "cuda" else "peak resident memory"
    rows = [
        ("model", f"{plan.name}: {plan.params:,} params, {plan.flops / 1e9:.3f} GFLOPs at {plan.input}"),
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
    if result.amp_dtype is not None:
        rows.append(("autocast", result.amp_dtype))
    return text_table(("figure", "value"), rows)
