"""Load weights into a built model: archspec's own checkpoints and those of reference implementations.

A state_dict that does not fit the model under its own names is matched against the checkpoint
layouts the families register (:mod:`archspec.families`): timm's, the official GFNet's and
SpectFormer-H's. Loading is strict: every key must map onto the model with the right shape and a dtype
of the same kind (bool, integer, floating-point, complex), and each one that does not is named.
:func:`warm_start` is the forgiving form, for an edited variant.

Reading is guarded too: a file whose tensors would not fit in memory (a zip bomb among them) is refused
before anything is inflated, a pickle is read without running code (an ``argparse.Namespace`` of plain
values, as timm's train.py stores, is read as a dict), a checkpoint saved from the meta device is refused
for holding no values, and weights that are NaN or infinite are refused unless asked for.
"""

from __future__ import annotations

import argparse
import functools
import io
import itertools
import pickle
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archspec.errors import KeyPath, format_path
from archspec.families import StateDict, get_layout, layouts
from archspec.fingerprint import canonical, chosen, differences, spec_fingerprint, structure_fingerprint
from archspec.nodes import Plan
from archspec.output import write_atomic
from archspec.weights_file import CheckpointError, check_file, shown

NONFINITE_HINT = "pass --allow-nonfinite (allow_nonfinite=True) to load it anyway"


def unwrap(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint, whether saved bare, under ``model``/``state_dict``, or by DDP (``module.``).

    Raises:
        CheckpointError: a key of the state_dict is not a string (AS501); tensors are named by strings.
    """
    for key in ("state_dict", "model"):
        inner = checkpoint.get(key)
        if isinstance(inner, Mapping):
            checkpoint = inner
            break
    for key in checkpoint:
        if not isinstance(key, str):
            raise CheckpointError(
                f"the checkpoint's state_dict has the key {shown(key)} ({type(key).__name__}); "
                "its keys must be tensor names (strings)",
                "AS501",
            )
    return {k.removeprefix("module."): v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}


def _refuse_meta(model: nn.Module, doing: str) -> None:
    """Refuse ``doing`` with a model whose tensors live on the meta device and so hold no data."""
    if any(t.is_meta for t in itertools.chain(model.parameters(), model.buffers())):
        raise CheckpointError(
            f"the model is on the meta device (shapes, no data), so {doing}; build it on cpu or cuda instead",
            "AS503",
        )


_KINDS = ("bool", "integer", "floating-point", "complex")
"""Kinds of dtype, each holding every value of the one before it."""


def _kind(dtype: torch.dtype) -> int:
    if dtype == torch.bool:
        return 0
    if dtype.is_complex:
        return 3
    return 2 if dtype.is_floating_point else 1


def _dtype_problems(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> list[str]:
    """Tensors whose dtype is of another kind than the model's (bool, integer, floating-point, complex).

    ``load_state_dict`` copies with a silent cast, so complex becomes real, float becomes integer and an
    integer tensor fills a float parameter without a word; a tensor of another kind is a checkpoint of
    something else. Another precision of the same kind (float16 into float32, float64 into float32) is
    a cast, not a change of kind, and passes.
    """
    problems = []
    for key, value in state.items():
        if key not in expected:
            continue
        theirs, ours = _kind(value.dtype), _kind(expected[key].dtype)
        if theirs == ours:
            continue
        why = (
            f"{_KINDS[theirs]} values do not fit {_KINDS[ours]} ones"
            if theirs > ours
            else f"{_KINDS[theirs]} values for {_KINDS[ours]} ones: a load may change the precision, not the kind"
        )
        problems.append(
            f"dtype: {key} is {_dtype_name(value.dtype)} in the checkpoint, {_dtype_name(expected[key].dtype)} "
            f"in the model ({why})"
        )
    return problems


def _layout_problems(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> list[str]:
    """Tensors stored sparse (or in another layout than the model's dense one), which no check or copy reads."""
    return [
        f"layout: {key} is {str(value.layout).removeprefix('torch.')} in the checkpoint, "
        f"{str(expected[key].layout).removeprefix('torch.')} in the model"
        for key, value in state.items()
        if key in expected and value.layout != expected[key].layout
    ]


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _refuse_meta_state(state: Mapping[str, torch.Tensor]) -> None:
    """Refuse a checkpoint whose tensors live on the meta device: saved from a model built there, it holds
    shapes and no values, and ``load_state_dict`` would fail copying out of it."""
    empty = [key for key, value in state.items() if value.is_meta]
    if empty:
        count = f"{len(empty)} of its {len(state)} tensors" if len(empty) < len(state) else f"its {len(state)} tensors"
        raise CheckpointError(
            f"the checkpoint holds no data: saved from the meta device, {count} have shapes and no values "
            f"(the first: {shown(empty[0])}); save the weights of a model built on cpu or cuda",
            "AS501",
        )


def _listing(problems: list[str]) -> str:
    """The first 20 problems, one an indented line, and how many more there are."""
    more = [f"... and {len(problems) - 20} more"] if len(problems) > 20 else []
    return "".join(f"\n  {line}" for line in problems[:20] + more)


def _check_finite(state: Mapping[str, torch.Tensor], keys: Iterable[str]) -> None:
    """Refuse NaN and infinite weights: a model loaded with them gives NaN for every input."""
    bad = [key for key in keys if _has_nonfinite(state[key])]
    if bad:
        first = state[bad[0]]
        count = int((~torch.isfinite(first)).sum())
        others = {1: "", 2: ", and 1 more tensor holds some"}.get(
            len(bad), f", and {len(bad) - 1} more tensors hold some"
        )
        raise CheckpointError(
            f"non-finite weights: {count:,} of the {first.numel():,} values of {bad[0]} are NaN or infinite"
            f"{others}; {NONFINITE_HINT}",
            "AS503",
        )


def _has_nonfinite(tensor: torch.Tensor) -> bool:
    if not (tensor.is_floating_point() or tensor.is_complex()) or tensor.is_meta:
        return False
    if tensor.is_floating_point() and tensor.element_size() == 1:  # float8: isfinite has no kernel for it
        tensor = tensor.float()
    return not bool(torch.isfinite(tensor).all())


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


def _fits(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> int:
    """How many of ``state``'s tensors land on a tensor of the same name and shape."""
    return sum(1 for key, value in state.items() if key in expected and expected[key].shape == value.shape)


def to_model_names(
    model: nn.Module, state: Mapping[str, torch.Tensor], layout: str | None = None
) -> tuple[StateDict, str | None]:
    """``state`` under the model's names: as it is, or converted from the reference layout that fits best.

    Args:
        model: the model the tensors are for.
        state: a bare state_dict.
        layout: a layout name to use (see :func:`archspec.families.layouts`); None picks one: the
            checkpoint as it is when it fits exactly, else the recognising layout whose conversion
            lands the most tensors.

    Returns:
        The converted state_dict and the layout's name (None when no conversion was needed).
    """
    if layout is not None:
        return get_layout(layout).convert(state), layout
    expected = model.state_dict()
    best: tuple[int, StateDict, str | None] = (_fits(expected, state), dict(state), None)
    if best[0] == len(expected) == len(state):
        return best[1], None
    for candidate in layouts():
        if candidate.detect(state.keys()):
            converted = candidate.convert(state)
            score = _fits(expected, converted)
            if score > best[0]:
                best = (score, converted, candidate.name)
    return best[1], best[2]


def load_state(
    model: nn.Module,
    checkpoint: Mapping[str, Any],
    layout: str | None = None,
    reinit: Collection[str] = (),
    allow_nonfinite: bool = False,
) -> str | None:
    """Strictly load a checkpoint into ``model``.

    Args:
        model: a model built by archspec.
        checkpoint: a state dict, or a dict holding one under ``state_dict`` or ``model``.
        layout: the reference layout the checkpoint is in; None detects it.
        reinit: module paths (``head``) whose tensors may be missing or have another shape: those
            keep their fresh initialisation (a classifier for another number of classes).
        allow_nonfinite: load NaN and infinite values instead of refusing them.

    Returns:
        The name of the layout the checkpoint was converted from, or None.

    Raises:
        CheckpointError: the model is on the meta device, or a tensor holds NaN or inf (AS503); a key
            is missing, unexpected, of another shape or of another dtype kind than the model's tensor
            (AS502); a key is not a string, or the tensors were saved from the meta device (AS501).
    """
    _refuse_meta(model, "there is nothing to load the weights into")
    bare = unwrap(checkpoint)
    _refuse_meta_state(bare)
    state, used = to_model_names(model, bare, layout)
    expected = model.state_dict()

    def reinitialised(key: str) -> bool:
        return any(key == path or key.startswith(path + ".") for path in reinit)

    for key in [k for k in state if reinitialised(k) and (k not in expected or state[k].shape != expected[k].shape)]:
        del state[key]
    problems = [p for p in check_keys(model, state) if not (p.startswith("missing: ") and reinitialised(p.split()[1]))]
    problems += _dtype_problems(expected, state) + _layout_problems(expected, state)
    if problems:
        source = f" (read as the {used} layout)" if used else ""
        raise CheckpointError(
            f"checkpoint does not fit the model{source} ({len(problems)} problems):{_listing(problems)}"
        )
    if not allow_nonfinite:
        _check_finite(state, state)
    model.load_state_dict(state, strict=not reinit)
    return used


@dataclass
class WarmStart:
    """What :func:`warm_start` copied, and what it could not."""

    layout: str | None
    copied: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    reshaped: list[str] = field(default_factory=list)

    def report(self) -> str:
        """A few lines: counts, then every tensor not copied, by name."""
        source = f" (converted from the {self.layout} layout)" if self.layout else ""
        lines = [f"copied {len(self.copied)} tensors{source}"]
        for title, names in (("new", self.new), ("dropped", self.dropped), ("shape changed", self.reshaped)):
            if names:
                lines.append(f"{title} ({len(names)}): " + ", ".join(names))
        return "\n".join(lines)


def warm_start(
    model: nn.Module, checkpoint: Mapping[str, Any], layout: str | None = None, allow_nonfinite: bool = False
) -> WarmStart:
    """Copy every tensor of a (parent's) checkpoint whose converted name and shape match the model.

    The rest of the model keeps its initialisation. The result names every tensor that is new in the
    model, dropped from the checkpoint, or of another shape. A tensor that fits but is of another dtype
    kind than the model's (complex into real, integer into float) refuses the whole copy, as do tensors
    saved from the meta device, and a NaN or inf among the copied tensors unless ``allow_nonfinite`` is set.
    """
    _refuse_meta(model, "there is nothing to load the weights into")
    bare = unwrap(checkpoint)
    _refuse_meta_state(bare)
    state, used = to_model_names(model, bare, layout)
    expected = model.state_dict()
    result = WarmStart(used)
    fitting = {}
    for key, value in state.items():
        if key not in expected:
            result.dropped.append(key)
        elif value.shape != expected[key].shape:
            result.reshaped.append(f"{key} {tuple(value.shape)} → {tuple(expected[key].shape)}")
        else:
            fitting[key] = value
            result.copied.append(key)
    result.new = [key for key in expected if key not in state]
    problems = _dtype_problems(expected, fitting) + _layout_problems(expected, fitting)
    if problems:
        raise CheckpointError(
            f"checkpoint tensors would lose data in the model ({len(problems)} problems):{_listing(problems)}"
        )
    if not allow_nonfinite:
        _check_finite(fitting, fitting)
    model.load_state_dict(fitting, strict=False)
    return result


FORMAT = "archspec-checkpoint/1"


def save_file(
    model: nn.Module, plan: Plan, path: str | Path, force: bool = False, extra: Mapping[str, Any] | None = None
) -> Path:
    """Write weights with the resolved spec and both fingerprints; the file appears whole or not at all.

    ``extra`` adds entries beside them (``archspec fit`` stores its training state under ``"fit"``);
    every loader reads such a file as plain weights.
    """
    _refuse_meta(model, "a checkpoint of it would hold no weights")
    payload = {
        **(extra or {}),
        "format": FORMAT,
        "spec": canonical(plan.spec),
        "spec_fingerprint": spec_fingerprint(plan.spec),
        "structure_fingerprint": structure_fingerprint(model),
        "state_dict": model.state_dict(),
    }
    return write_atomic(path, lambda handle: torch.save(payload, handle), force)


MAX_SPEC_DEPTH = 64
"""The deepest a checkpoint's stored spec may nest; a spec is a handful of levels deep."""


def _plain_spec(value: object, path: KeyPath, path_label: str) -> Any:
    """A copy of a stored spec as plain data (dicts with string keys, lists, strings, numbers, None).

    Raises:
        CheckpointError: (AS501) the spec nests deeper than :data:`MAX_SPEC_DEPTH`, has a key that is
            not a string, or holds something other than plain data; ``path_label`` names the file.
    """
    if len(path) > MAX_SPEC_DEPTH:
        raise CheckpointError(
            f"{path_label}: the stored spec nests too deeply (past {MAX_SPEC_DEPTH} levels, at "
            f"{shown(format_path(path[:4]))}…); a spec is a few levels deep",
            "AS501",
        )
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_plain_spec(item, (*path, i), path_label) for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        plain = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise CheckpointError(
                    f"{path_label}: the stored spec has the key {shown(key)} ({type(key).__name__}) at "
                    f"{shown(format_path(path))}; a spec's keys are strings",
                    "AS501",
                )
            plain[key] = _plain_spec(item, (*path, key), path_label)
        return plain
    raise CheckpointError(
        f"{path_label}: the stored spec holds a {type(value).__module__}.{type(value).__qualname__} at "
        f"{shown(format_path(path))}; a spec is plain data",
        "AS501",
    )


def check_spec(checkpoint: Mapping[str, Any], plan: Plan, path: str | Path) -> None:
    """Refuse an archspec checkpoint saved for another model, naming what differs.

    Fingerprints that differ only because the format has grown since (or because the checkpoint
    predates fingerprints without defaults) are no difference: the stored spec is read again and
    what it chose is compared with what this spec chooses. A stored spec that is not plain data, or
    nests past :data:`MAX_SPEC_DEPTH` levels, is refused (AS501) before it is read.
    """
    stored = checkpoint.get("spec_fingerprint")
    if stored is None:
        return
    if not isinstance(stored, str):
        raise CheckpointError(
            f"{path}: its spec_fingerprint is {shown(stored)} ({type(stored).__name__}), not a string", "AS501"
        )
    if stored == spec_fingerprint(plan.spec):
        return
    from archspec.errors import SpecError
    from archspec.spec import validate

    stored_spec = checkpoint.get("spec")
    if not isinstance(stored_spec, Mapping):
        listing = "(the checkpoint holds no spec to compare)"
    else:
        plain = _plain_spec(stored_spec, (), str(path))
        try:
            theirs = chosen(validate(plain))
        except SpecError:
            theirs = plain  # a spec this version cannot read: compare it as written
        changes = differences(theirs, chosen(plan.spec))
        if not changes:
            return
        listing = "\n  ".join(changes[:20])
    label = stored if len(stored) <= 80 and stored.isprintable() else shown(stored)
    raise CheckpointError(
        f"{path}: saved for a different spec (fingerprint {label}, this spec {spec_fingerprint(plan.spec)}); "
        f"checkpoint → this spec:\n  {listing}"
    )


PLAIN_VALUES = "strings, numbers, booleans, None, and lists, tuples and dicts of them"
"""What an ``argparse.Namespace`` in a checkpoint may hold, in words."""
_MAX_ARGS_DEPTH = 32


class _NotPlainData(Exception):
    """Raised from inside ``torch.load`` when an ``argparse.Namespace`` holds more than plain values."""


def _plain_value(value: object, name: str, depth: int = 0) -> Any:
    """A copy of the Namespace attribute ``name``'s ``value``, made of plain values only."""
    if depth > _MAX_ARGS_DEPTH:
        raise _NotPlainData(f"whose {name} nests past {_MAX_ARGS_DEPTH} levels")
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple):
        items = [_plain_value(item, name, depth + 1) for item in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):  # a NamespaceData among them: already checked, copied as a plain dict
        copy = {}
        for key, item in value.items():
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise _NotPlainData(f"whose {name} holds the dict key {_what(key)}")
            copy[key] = _plain_value(item, name, depth + 1)
        return copy
    raise _NotPlainData(f"whose {name} {'is' if depth == 0 else 'holds'} {_what(value)}")


def _what(value: object) -> str:
    """``a torch.Tensor``, ``the class collections.OrderedDict``: what a refused value is."""
    if isinstance(value, type):
        return f"the class {value.__module__}.{value.__qualname__}"
    kind = type(value)
    return f"a {kind.__module__}.{kind.__qualname__}".replace("a builtins.", "a ")


class NamespaceData(dict[str, Any]):
    """An ``argparse.Namespace`` of a checkpoint (timm's ``args``), read as a dict of its values.

    :func:`read_file` lets ``torch.load(weights_only=True)`` build this class wherever the pickle names
    ``argparse.Namespace``. It is built empty and takes its values from the pickle's state, copying
    only plain data (strings, numbers, booleans, None, and lists, tuples and dicts of them); anything
    else stops the load.
    """

    def __new__(cls, *args: object, **kwargs: object) -> NamespaceData:
        if args or kwargs:
            raise _NotPlainData("built with arguments")
        return super().__new__(cls)

    def __init__(self) -> None:
        super().__init__()

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, dict):
            raise _NotPlainData(f"whose state is {_what(state)}, not a dict")
        for key, value in state.items():
            if not isinstance(key, str):
                raise _NotPlainData(f"with the attribute name {shown(key, 40)}")
            self[key] = _plain_value(value, shown(key, 40))


_STAND_INS: list[Any] = [(NamespaceData, "argparse.Namespace")]
"""Globals ``torch.load`` may build, each as an archspec class that takes plain data only."""


@functools.cache
def _stand_ins() -> list[Any]:
    """:data:`_STAND_INS` where this torch builds them, else none (the ``(class, "module.name")`` form of
    ``safe_globals`` arrived in torch 2.6; before it, a Namespace stays refused by name)."""
    buffer = io.BytesIO()
    torch.save({"args": argparse.Namespace(probe=1)}, buffer)
    buffer.seek(0)
    try:
        with torch.serialization.safe_globals(_STAND_INS):
            probe = torch.load(buffer, weights_only=True)
    except Exception:  # an older torch fails on the tuple in its own way
        return []
    return _STAND_INS if type(probe["args"]) is NamespaceData and probe["args"] == {"probe": 1} else []


_REFUSED_GLOBAL = re.compile(r"GLOBAL (\S+) (?:was not an allowed global|whose module \S+ is blocked)")
_ADVICE = (
    "weights_only",
    "safe_globals",
    "torch.load",
    "file an issue",
    "weights only load",
    "documentation",
    "trusted source",
)
"""Words of the sentences torch adds to a refusal: how to load the file anyway, where to read more."""


def _without_advice(text: str) -> str:
    """``text`` without torch's advice on loading the file anyway (``weights_only=False`` runs its code)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text).replace(getattr(torch.serialization, "UNSAFE_MESSAGE", "\0"), "")
    sentences = re.split(r"(?<=[.!?])\s+|\n+", text)
    kept = [s.strip() for s in sentences if s.strip() and not any(w in s.lower() for w in _ADVICE)]
    return " ".join(kept)


def _refusal(path: Path, exc: Exception) -> CheckpointError:
    """Why ``torch.load(weights_only=True)`` failed on ``path``, in words that never advise running its code."""
    text = str(exc)
    if isinstance(exc, _NotPlainData):
        why = f"it holds an argparse.Namespace {text}; only plain values are read from one ({PLAIN_VALUES})"
    elif found := _REFUSED_GLOBAL.search(text):
        name = found[1] if "." in found[1] else f"builtins.{found[1]}"  # torch drops the builtins prefix
        why = f"it holds the Python object {name}, which a weights-only load does not run"
    elif "TorchScript archive" in text:
        why = "it is a TorchScript archive (a program), not a checkpoint of weights"
    elif "legacy .tar format" in text:
        why = "it is in torch's legacy .tar format, which a weights-only load does not read"
    elif isinstance(exc, pickle.UnpicklingError):
        why = f"a weights-only load refused it ({_without_advice(text) or 'no reason given'})"
    else:
        return CheckpointError(
            f"{path}: not a readable checkpoint ({type(exc).__name__}: {_without_advice(text) or 'no reason given'})",
            "AS501",
        )
    return CheckpointError(f"{path}: not a readable checkpoint: {why}", "AS501")


def read_file(path: str | Path, max_bytes: int | None = None) -> Mapping[str, Any]:
    """Read a checkpoint file without running code: ``torch.load(weights_only=True)``, or safetensors.

    Before anything is inflated, :func:`archspec.weights_file.check_file` checks the sizes the file
    declares against ``max_bytes`` (default: the memory available now). An ``argparse.Namespace`` in
    the file (timm's train.py stores its options as ``args``) is read as a :class:`NamespaceData` dict
    of plain values, so timm's training checkpoints load; at the top level it becomes a plain dict.

    Raises:
        CheckpointError: the file is missing, unreadable, holds a Python object the weights-only load
            does not build, or is refused by those checks (AS501).
    """
    path = check_file(path, max_bytes)
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file as load_safetensors
        except ImportError:
            raise CheckpointError(
                f"{path}: reading safetensors needs the package: pip install safetensors", "AS501"
            ) from None
        try:
            return load_safetensors(str(path), device="cpu")
        except Exception as exc:  # the reader raises its own types for foreign or truncated files
            raise CheckpointError(
                f"{path}: not a readable safetensors file ({type(exc).__name__}: {exc})", "AS501"
            ) from None
    try:
        with torch.serialization.safe_globals(_stand_ins()):
            checkpoint: object = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise _refusal(path, exc) from None
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"{path}: expected a dict of tensors, found {type(checkpoint).__name__}", "AS501")
    return {key: dict(value) if isinstance(value, NamespaceData) else value for key, value in checkpoint.items()}


@contextmanager
def located(path: str | Path) -> Iterator[None]:
    """Start the message of a :class:`CheckpointError` raised in the block with ``path``, unless it does."""
    try:
        yield
    except CheckpointError as exc:
        if str(exc).startswith(f"{path}: "):
            raise
        raise CheckpointError(f"{path}: {exc}", exc.code) from None


def load_file(
    model: nn.Module,
    path: str | Path,
    layout: str | None = None,
    plan: Plan | None = None,
    reinit: Collection[str] = (),
    allow_nonfinite: bool = False,
) -> str | None:
    """Load a checkpoint file strictly (see :func:`load_state`); returns the layout it was converted from.

    With ``plan``, an archspec checkpoint saved for another spec is refused, naming what differs. The
    file is read with :func:`read_file`'s guards; a model on the meta device is refused before it is read.
    """
    _refuse_meta(model, "there is nothing to load the weights into")
    checkpoint = read_file(path)
    if plan is not None and not reinit:
        check_spec(checkpoint, plan, path)
    with located(path):
        return load_state(model, checkpoint, layout, reinit, allow_nonfinite)
