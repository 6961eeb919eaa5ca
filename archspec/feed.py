"""Batches for ``archspec fit``: from images held in memory, or decoded on the fly by worker processes.

The in-memory feed keeps the images at the model's input size in the dtype they were read in
(``uint8`` for 8-bit images) and turns each batch into normalised float32 on the device. The
streaming feed serves image folders larger than memory: a ``torch.utils.data.DataLoader`` whose
worker processes decode and resize each image as it is needed. :func:`choose` picks one from the
memory budget. Both feeds take the same batches of positions in the training split, and turn them
into the same tensors, so a run gives the same numbers whichever feed it used.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from archspec import budget
from archspec.data import Catalog, DataError, Split
from archspec.nodes import Plan
from archspec.units import memory_size

LOADERS = ("auto", "memory", "stream")
EVAL_BATCH = 256
STAT_SAMPLE = 1024
"""Training images the streaming feed draws its normalisation statistics from."""
CHUNK = 256
"""Images summed at a time for the statistics, so that no step holds a float64 copy of all the data."""


def default_workers() -> int:
    """Worker processes for the streaming feed: one per CPU core this process may use, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


@dataclass(frozen=True)
class Choice:
    """Which feed a run uses, and why."""

    kind: str  # "memory" or "stream"
    workers: int
    data_bytes: int  # what the in-memory feed holds (0 when streaming)
    reason: str

    def describe(self) -> str:
        if self.kind == "memory":
            return f"data: held in memory ({memory_size(self.data_bytes)}; {self.reason})"
        processes = f"{self.workers} worker process{'es' * (self.workers != 1)}" if self.workers else "this process"
        return f"data: streamed from disk, decoded by {processes} ({self.reason})"


def choose(
    catalog: Catalog, size: tuple[int, int], plan: Plan, batch: int, requested: str = "auto", workers: int | None = None
) -> Choice:
    """The feed for ``catalog`` at ``size``: ``requested``, or with ``"auto"`` memory when the images, the
    model and a batch's activations fit the budget (:data:`archspec.budget.SHARE` of the memory
    available) and streaming otherwise (image folders only: arrays are in memory already)."""
    if requested not in LOADERS:
        raise ValueError(f"loader must be one of {', '.join(LOADERS)}, got {requested!r}")
    stored = catalog.stored_bytes(size)
    count = default_workers() if workers is None else workers
    if requested == "stream":
        if catalog.kind != "folder":
            raise DataError(
                f"{catalog.source}: --loader stream decodes image folders as it goes; "
                f"{catalog.kind} data is read into memory whole (use --loader memory or auto)"
            )
        return Choice("stream", count, 0, "as asked")
    if requested == "memory":
        return Choice("memory", 0, stored, "as asked")
    available = budget.available_bytes()
    if available is None:
        return Choice("memory", 0, stored, "the memory available is unknown")
    limit = budget.SHARE * available
    if stored + budget.training_bytes(plan, batch) <= limit:
        return Choice("memory", 0, stored, "it fits the memory budget")
    over = f"in memory the images would take {memory_size(stored)}, over the budget of {memory_size(int(limit))}"
    if catalog.kind != "folder":
        return Choice("memory", 0, stored, f"{catalog.kind} data is read whole; {over}")
    return Choice("stream", count, 0, over)


class _Batches:
    """A DataLoader's batch sampler whose batches are set anew every epoch."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class Feed:
    """Raw batches (as read: ``uint8`` or float32) for training and validation, and the statistics to normalise them."""

    scale: float
    device: torch.device

    def train_batches(self, batches: Sequence[list[int]]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Images and labels for each batch of positions in the training split, on the device."""
        raise NotImplementedError

    def val_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError

    def statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and standard deviation of the training images (scaled to [0, 1] for 8-bit ones)."""
        raise NotImplementedError

    def normalised(self, raw: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        x = raw.to(self.device, non_blocking=True).float()
        if self.scale != 1.0:
            x = x / self.scale
        return (x - mean) / std


def _moments(chunks: Iterable[torch.Tensor], scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (unbiased) standard deviation over every pixel of ``chunks``, summed in float64."""
    total = squares = None
    count = 0
    for chunk in chunks:
        values = chunk.double() / scale
        sums, sums_sq = values.sum(dim=(0, 2, 3)), values.square().sum(dim=(0, 2, 3))
        total = sums if total is None else total + sums
        squares = sums_sq if squares is None else squares + sums_sq
        count += chunk.shape[0] * chunk.shape[2] * chunk.shape[3]
    assert total is not None and squares is not None, "the training split holds images"
    mean = total / count
    variance = (squares - count * mean.square()) / max(1, count - 1)
    std = variance.clamp_min(0).sqrt().clamp_min(1e-6)
    return mean.float().view(1, -1, 1, 1), std.float().view(1, -1, 1, 1)


class MemoryFeed(Feed):
    """Every image decoded once, at the input size, and held on the device in the dtype it was read in."""

    def __init__(self, catalog: Catalog, split: Split, size: tuple[int, int], resize: str, device: torch.device):
        images = catalog.load(size, resize)  # decoded and resized one image at a time
        x = torch.from_numpy(images.x)
        self.scale = images.scale
        self.device = device
        self.x = x.to(device)
        self.y = torch.from_numpy(images.y).to(device)
        self.train = torch.from_numpy(split.train).to(device)
        self.val = torch.from_numpy(split.val).to(device)

    def train_batches(self, batches: Sequence[list[int]]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for positions in batches:
            index = self.train[torch.tensor(positions, device=self.device)]
            yield self.x[index], self.y[index]

    def val_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(self.val), EVAL_BATCH):
            index = self.val[start : start + EVAL_BATCH]
            yield self.x[index], self.y[index]

    def statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        chunks = (self.x[self.train[i : i + CHUNK]] for i in range(0, len(self.train), CHUNK))
        mean, std = _moments(chunks, self.scale)
        return mean.to(self.device), std.to(self.device)


class StreamFeed(Feed):
    """Images decoded as they are needed by ``workers`` DataLoader processes (0: by this process)."""

    def __init__(
        self, catalog: Catalog, split: Split, size: tuple[int, int], resize: str, device: torch.device, workers: int
    ):
        self.scale = 255.0 if catalog.dtype == "uint8" else 1.0
        self.device = device
        self.workers = workers
        self.train_set: Dataset[Any] = catalog.dataset(split.train, size, resize)
        self.val_set: Dataset[Any] = catalog.dataset(split.val, size, resize)
        self.train_count = len(split.train)
        self.sampler = _Batches()
        pin = device.type == "cuda"
        options: dict[str, Any] = {"num_workers": workers, "pin_memory": pin}
        if workers:
            options.update(persistent_workers=True, prefetch_factor=2)
        self.train_loader = DataLoader(self.train_set, batch_sampler=self.sampler, **options)
        self.val_loader = DataLoader(self.val_set, batch_size=EVAL_BATCH, shuffle=False, **options)

    def train_batches(self, batches: Sequence[list[int]]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.sampler.batches = list(batches)
        for x, y in _reraised(self.train_loader):
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def val_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in _reraised(self.val_loader):
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng(0)
        count = min(STAT_SAMPLE, self.train_count)
        sample = sorted(rng.choice(self.train_count, size=count, replace=False).tolist())
        batches = [sample[i : i + CHUNK] for i in range(0, count, CHUNK)]
        loader = DataLoader(self.train_set, batch_sampler=batches, num_workers=self.workers)
        mean, std = _moments((x for x, _ in _reraised(loader)), self.scale)
        return mean.to(self.device), std.to(self.device)


def _reraised(loader: DataLoader[Any]) -> Iterator[Any]:
    """Iterate ``loader``; a DataError raised in a worker process comes back as the DataError it was.

    DataLoader re-raises a worker's exception as its type with the worker's traceback for a
    message; the last line of that traceback is the error's own message.
    """
    try:
        yield from loader
    except DataError as exc:
        text = str(exc)
        if "Traceback" not in text:
            raise
        last = text.rstrip().splitlines()[-1]
        raise DataError(last.split(": ", 1)[1] if ": " in last else last) from None
