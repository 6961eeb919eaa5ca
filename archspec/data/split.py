"""The seeded, stratified split of a data source into training and validation images."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from archspec.data.errors import DataError


class Labelled(Protocol):
    """What a split reads: a :class:`~archspec.data.Catalog` or :class:`~archspec.data.Images`."""

    @property
    def labels(self) -> np.ndarray: ...
    @property
    def classes(self) -> tuple[str, ...]: ...
    @property
    def source(self) -> str: ...


@dataclass(frozen=True)
class Split:
    """Indices of the training and validation images, drawn once from ``seed``."""

    train: np.ndarray
    val: np.ndarray
    seed: int

    def describe(self) -> str:
        return f"split: {len(self.train):,} train / {len(self.val):,} validation (seed {self.seed})"


def split(data: Labelled, val_fraction: float = 0.2, seed: int = 0) -> Split:
    """A seeded, stratified split: each class gives ``val_fraction`` of its images (at least one) to validation."""
    if not 0 < val_fraction < 1:
        raise DataError(f"{data.source}: the validation fraction must be between 0 and 1, got {val_fraction}")
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in range(len(data.classes)):
        members = np.flatnonzero(data.labels == label)
        if len(members) == 0:
            continue
        members = rng.permutation(members)
        count = min(len(members) - 1, max(1, round(len(members) * val_fraction)))
        val.append(members[:count])
        train.append(members[count:])
    if not sum(len(v) for v in val):
        raise DataError(f"{data.source}: every class has one image: nothing is left for validation")
    return Split(np.sort(np.concatenate(train)), np.sort(np.concatenate(val)), seed)
