"""Load weights into a built model: archspec's own checkpoints and official SpectFormer-H ones.

The official implementation keeps each block's token mixer under ``attn`` where archspec says ``m``;
everything else has the same name and shape. Loading is strict: every key must map onto the model
with the right shape, and each one that does not is named.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archspec.errors import ArchspecError
from archspec.fingerprint import canonical, differences, structure_fingerprint
from archspec.output import write_atomic
from archspec.plan import Plan

_OFFICIAL_MIXER = re.compile(r"^(block\d+\.\d+)\.attn\.")


class CheckpointError(ArchspecError):
    """A checkpoint cannot be read (AS501) or does not fit the model it is loaded into (AS502)."""

    def __init__(self, message: str, code: str = "AS502") -> None:
        super().__init__(message)
        self.code = code


def unwrap(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint, whether saved bare, under ``model``/``state_dict``, or by DDP (``module.``)."""
    for key in ("state_dict", "model"):
        inner = checkpoint.get(key)
        if isinstance(inner, Mapping):
            checkpoint = inner
            break
    return {k.removeprefix("module."): v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}


def from_official(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename official SpectFormer-H keys (``block2.0.attn.q.weight``) to archspec's (``block2.0.m.q.weight``).

    The class-attention blocks of ``post_network`` keep ``attn``: only block mixers are renamed.
    """
    return {_OFFICIAL_MIXER.sub(r"\1.m.", key): value for key, value in state_dict.items()}


def check_keys(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> list[str]:
    """Every way ``state_dict`` fails to fit ``model``: missing keys, unexpected keys, wrong shapes."""
    expected = model.state_dict()
    problems = [f"missing: {key} {tuple(expected[key].shape)}" for key in expected if key not in state_dict]
    problems += [f"unexpected: {key}" for key in state_dict if key not in expected]
    problems += [
        f"shape: {key} is {tuple(value.shape)} in the checkpoint, {tuple(expected[key].shape)} in the model"
        for key, value in state_dict.items()
        if key in expected and value.shape != expected[key].shape
    ]
    return problems


def load_state(model: nn.Module, checkpoint: Mapping[str, Any], official: bool | None = None) -> None:
    """Strictly load a checkpoint into ``model``.

    Args:
        model: a model built by archspec.
        checkpoint: a state dict, or a dict holding one under ``state_dict`` or ``model``.
        official: rename official SpectFormer-H keys first; None detects them (a ``blockN.M.attn.`` key).
    """
    state = unwrap(checkpoint)
    if official is None:
        official = any(_OFFICIAL_MIXER.match(key) for key in state)
    if official:
        state = from_official(state)
    problems = check_keys(model, state)
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise CheckpointError(f"checkpoint does not fit the model ({len(problems)} problems):\n  {shown}{more}")
    model.load_state_dict(state, strict=True)


FORMAT = "archspec-checkpoint/1"


def save_file(model: nn.Module, plan: Plan, path: str | Path, force: bool = False) -> Path:
    """Write weights with the resolved spec and both fingerprints; the file appears whole or not at all."""
    payload = {
        "format": FORMAT,
        "spec": canonical(plan.spec),
        "spec_fingerprint": plan.fingerprint,
        "structure_fingerprint": structure_fingerprint(model),
        "state_dict": model.state_dict(),
    }
    return write_atomic(path, lambda handle: torch.save(payload, handle), force)


def _check_spec(checkpoint: Mapping[str, Any], plan: Plan, path: str | Path) -> None:
    stored = checkpoint.get("spec_fingerprint")
    if stored is None or stored == plan.fingerprint:
        return
    changes = differences(checkpoint.get("spec", {}), canonical(plan.spec))
    listing = "\n  ".join(changes[:20]) or "(the stored spec is missing)"
    raise CheckpointError(
        f"{path}: saved for a different spec (fingerprint {stored}, this spec {plan.fingerprint}); "
        f"checkpoint → this spec:\n  {listing}"
    )


def load_file(model: nn.Module, path: str | Path, official: bool | None = None, plan: Plan | None = None) -> None:
    """Load a ``torch.save`` checkpoint file (read with ``weights_only=True``, so it cannot run code).

    With ``plan``, an archspec checkpoint saved for another spec is refused, naming what differs.
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file", "AS501") from None
    except Exception as exc:  # torch raises many types for truncated or foreign files
        message = f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})"
        raise CheckpointError(message, "AS501") from None
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"{path}: expected a dict of tensors, found {type(checkpoint).__name__}", "AS501")
    if plan is not None:
        _check_spec(checkpoint, plan, path)
    load_state(model, checkpoint, official)
