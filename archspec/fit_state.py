"""The training state ``archspec fit --save`` writes and ``--resume`` reads back, checked before it is used.

A checkpoint is data from outside: its training state is read as plain values (``weights_only``)
and then checked by type and range before anything of it reaches the optimiser. The history must
be the history of this run: epochs numbered from 1, no more than the run has, accuracies that are a
whole number of validation images, and as many optimiser steps behind it as those epochs take. A
checkpoint that fails a check is refused (AS1003) naming the entry; nothing is recomputed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archspec.errors import ArchspecError
from archspec.nodes import Plan
from archspec.weights_file import shown

CHECKPOINT_KEY = "fit"
"""Where a ``fit --save`` checkpoint keeps its training state, beside the weights."""


class FitError(ArchspecError):
    """Training that cannot start or go on: a backbone spec, a diverging loss (AS1002), a checkpoint that
    belongs to another run (AS1003), an option out of range (AS601)."""

    def __init__(self, message: str, code: str = "AS1002") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    train_loss: float
    val_loss: float
    val_acc: float
    lr: float
    seconds: float
    samples_per_s: float


_COUNTS = ("epoch",)
_NUMBERS = tuple(f.name for f in fields(EpochMetrics) if f.name not in _COUNTS)


def save(
    path: str | Path,
    model: nn.Module,
    plan: Plan,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    run: Mapping[str, Any],
    history: Sequence[EpochMetrics],
    clock: Mapping[str, float],
    stats: Mapping[str, Any],
    force: bool,
) -> None:
    """Write weights, spec and fingerprints (as ``build --weights`` reads them) and the training state (``"fit"``)."""
    from archspec.checkpoint import save_file

    state = {
        "run": dict(run),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "history": [asdict(m) for m in history],
        "clock": dict(clock),
        "normalize": dict(stats),
    }
    save_file(model, plan, path, force=force, extra={CHECKPOINT_KEY: state})


def _tampered(path: str | Path, entry: str, problem: str) -> FitError:
    return FitError(f"{path}: the training state's {entry} {problem}; the checkpoint cannot be resumed", "AS1003")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _history(path: str | Path, raw: object, epochs: int, val_count: int) -> list[EpochMetrics]:
    if not isinstance(raw, list):
        raise _tampered(path, "history", f"is {type(raw).__name__}, not a list of epochs")
    if len(raw) > epochs:
        raise _tampered(path, "history", f"holds {len(raw)} epochs, more than the run's {epochs}")
    history = []
    for index, entry in enumerate(raw):
        where = f"history entry {index}"
        if not isinstance(entry, Mapping) or set(entry) != {f.name for f in fields(EpochMetrics)}:
            keys = sorted(map(shown, entry)) if isinstance(entry, Mapping) else type(entry).__name__
            raise _tampered(path, where, f"is not an epoch's metrics (found {keys})")
        epoch = entry["epoch"]
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch != index + 1:
            raise _tampered(path, where, f"is numbered {shown(epoch)}, not {index + 1}")
        for name in _NUMBERS:
            if not _number(entry[name]) or entry[name] < 0:
                raise _tampered(path, where, f"has {name} {shown(entry[name])}, not a finite number ≥ 0")
        accuracy = entry["val_acc"]
        correct = accuracy * val_count
        if accuracy > 1 or abs(correct - round(correct)) > 1e-6 * max(1, val_count):
            raise _tampered(path, where, f"has val_acc {accuracy!r}, not a share of the {val_count} validation images")
        history.append(EpochMetrics(**{name: entry[name] for name in entry}))
    return history


def _clock(path: str | Path, raw: object) -> dict[str, float]:
    keys = {"elapsed", "train_time", "trained"}
    if not isinstance(raw, Mapping) or set(raw) != keys:
        raise _tampered(path, "clock", f"is not a mapping of {', '.join(sorted(keys))}")
    for key, value in raw.items():
        if not _number(value) or value < 0:
            raise _tampered(path, f"clock's {key}", f"is {shown(value)}, not a finite number ≥ 0")
    return {key: float(value) for key, value in raw.items()}


def _optimizer(path: str | Path, optimizer: torch.optim.Optimizer, raw: object, steps: int, exact: bool) -> None:
    """Load the optimiser's state after checking it holds, for each parameter, moments of its shape and ``steps``
    steps (at most ``steps`` unless ``exact``: float16 loss scaling skips the steps whose gradients overflowed)."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("state"), Mapping):
        raise _tampered(path, "optimizer state", "is not an optimiser's state_dict")
    groups = raw.get("param_groups")
    ours = optimizer.param_groups
    if not isinstance(groups, list) or len(groups) != len(ours):
        raise _tampered(path, "optimizer state", f"does not hold the {len(ours)} parameter groups of this model")
    parameters: dict[object, torch.Tensor] = {}
    for index, (group, mine) in enumerate(zip(groups, ours, strict=True)):
        params = group.get("params") if isinstance(group, Mapping) else None
        if not isinstance(params, list) or len(params) != len(mine["params"]):
            expected = len(mine["params"])
            raise _tampered(path, f"optimizer group {index}", f"does not list the group's {expected} parameters")
        parameters.update(zip(params, mine["params"], strict=True))
    for key, entry in raw["state"].items():
        parameter = parameters.get(key)
        if parameter is None or not isinstance(entry, Mapping):
            raise _tampered(path, "optimizer state", f"has an entry {shown(key)} for no parameter of this model")
        for name, value in entry.items():
            what = f"optimizer state {shown(name)} of parameter {key}"
            if name == "step":
                count = value.item() if isinstance(value, torch.Tensor) and value.numel() == 1 else value
                if not _number(count) or count > steps or (exact and count != steps):
                    problem = f"counts {shown(count)} steps; the history's epochs take {steps}"
                    raise _tampered(path, "optimizer state", problem)
            elif not isinstance(value, torch.Tensor) or value.shape != parameter.shape or not value.is_floating_point():
                raise _tampered(path, what, "does not match its shape")
            elif not bool(torch.isfinite(value).all()):
                raise _tampered(path, what, "holds NaN or infinite values")
    try:
        optimizer.load_state_dict(dict(raw))
    except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as exc:
        raise _tampered(path, "optimizer state", f"does not load ({type(exc).__name__}: {shown(str(exc))})") from None


def saved_precision(path: str | Path) -> str | None:
    """The precision the ``fit --save`` checkpoint at ``path`` trained in, or None where it does not say;
    :func:`restore` checks the rest."""
    from archspec.checkpoint import read_file

    state = read_file(path).get(CHECKPOINT_KEY)
    run = state.get("run") if isinstance(state, Mapping) else None
    if not isinstance(run, Mapping):
        return None
    if "precision" not in run and "amp" in run:  # written before --precision replaced --amp
        return "bf16-mixed" if run["amp"] is True else "fp32"
    precision = run.get("precision")
    return precision if isinstance(precision, str) else None


def restore(
    path: str | Path,
    plan: Plan,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    run: Mapping[str, Any],
    steps_per_epoch: int,
    val_count: int,
) -> tuple[list[EpochMetrics], dict[str, float]]:
    """Load a ``fit --save`` checkpoint of this same run into ``model``, ``optimizer`` and ``scaler``.

    Returns:
        The epochs already done, and the run's clock (elapsed, training time, images trained).

    Raises:
        FitError: (AS1003) the file holds no training state, was saved by another run, or its state
            fails a check; CheckpointError: the weights do not fit (see :func:`archspec.checkpoint.read_file`).
    """
    from archspec.checkpoint import check_spec, load_state, located, read_file

    checkpoint = read_file(path)
    state = checkpoint.get(CHECKPOINT_KEY)
    if not isinstance(state, Mapping):
        raise FitError(f"{path}: not a checkpoint of archspec fit --save (it holds no training state)", "AS1003")
    check_spec(checkpoint, plan, path)
    saved = state.get("run")
    if not isinstance(saved, Mapping):
        raise _tampered(path, "run", "is not a mapping of the run's options")
    if "precision" not in saved and "amp" in saved:  # written before --precision replaced --amp
        saved = {**saved, "precision": "bf16-mixed" if saved["amp"] is True else "fp32"}
    changed = [f"{key}: {shown(saved.get(key))} → {value!r}" for key, value in run.items() if saved.get(key) != value]
    if changed:
        raise FitError(
            f"{path}: saved by a different run; resuming continues the same data, options and process count "
            "exactly:\n  " + "\n  ".join(changed),
            "AS1003",
        )
    history = _history(path, state.get("history"), int(run["epochs"]), val_count)
    clock = _clock(path, state.get("clock"))
    scaler_state = state.get("scaler")
    if not isinstance(scaler_state, Mapping):
        raise _tampered(path, "scaler state", "is not a mapping")
    with located(path):
        load_state(model, checkpoint)
    _optimizer(path, optimizer, state.get("optimizer"), len(history) * steps_per_epoch, not scaler.is_enabled())
    try:
        scaler.load_state_dict(dict(scaler_state))
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise _tampered(path, "scaler state", f"does not load ({type(exc).__name__})") from None
    return history, clock
