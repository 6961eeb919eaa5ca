"""The command line's shared vocabulary: option types, the options several commands take, old spellings.

An option that more than one command takes is declared once here, so it is spelled, typed and
explained the same way everywhere (``tests/test_cli_vocabulary.py`` walks every command's parser to
hold that):

- ``--input CxHxW`` and its short form ``--size N|HxW`` on every command that plans or builds a model;
- ``--format``: ``table`` is a plain-text table, ``md`` Markdown, ``json`` and ``csv`` data;
- ``--precision``: ``fp32``, ``fp64``, ``bf16`` and ``fp16`` hold the parameters in that type;
  ``bf16-mixed`` and ``fp16-mixed`` keep float32 parameters and compute under autocast; ``auto``
  (the training commands' default) is ``bf16-mixed`` where the device has native bfloat16, else ``fp32``;
- ``--force`` overwrites an existing output file and does nothing else; ``--no-budget`` lifts the
  memory budget.

An old spelling keeps working for one release through :class:`Renamed`: it is hidden from ``--help``,
stores what its replacement stores, and leaves a deprecation warning that :func:`deprecations`
returns once the command line is parsed. Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

PRECISIONS = {
    "auto": "bf16-mixed where the device computes bfloat16 natively (CUDA, or a CPU with AVX512-BF16 or AMX), "
    "else fp32",
    "fp32": "float32 parameters and compute",
    "fp64": "float64 parameters and compute",
    "bf16": "bfloat16 parameters and compute",
    "fp16": "float16 parameters and compute",
    "bf16-mixed": "float32 parameters, compute under bfloat16 autocast",
    "fp16-mixed": "float32 parameters, compute under float16 autocast",
}
"""Every value ``--precision`` takes, on any command; each command accepts the ones it can run."""

PARAMETER_DTYPE = {"fp32": "float32", "fp64": "float64", "bf16": "bfloat16", "fp16": "float16"}
"""The torch dtype a ``--precision`` that holds the parameters in another type gives them."""

AUTOCAST_DTYPE = {"fp32": "float32", "bf16-mixed": "bfloat16", "fp16-mixed": "float16"}
"""The dtype a ``--precision`` computes in under autocast (``float32``: no autocast)."""

FORMATS = {
    "table": "a plain-text table",
    "md": "a Markdown table",
    "json": "JSON",
    "csv": "comma-separated values",
}
"""Every value ``--format`` takes on the commands that print tables (``export --format`` names a file type)."""

FORCE_HELP = "overwrite an existing output file"
NO_BUDGET_HELP = "skip the memory budget check (the estimate of what building and running needs)"
INPUT_HELP = "input channels and size, e.g. 3x384x384 (sets input.channels and input.size)"
SIZE_HELP = "input size, keeping the channels: N for N×N or HxW, e.g. 384 or 384x512 (sets input.size)"

DEPRECATIONS = "_deprecations"
"""The namespace attribute where :class:`Renamed` leaves its warnings."""


# argparse names a type function in its message for a value the function cannot read ("argument
# --batch: invalid whole number value: '1,2'"), so each type below carries a __name__ users can read.


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


positive_int.__name__ = "whole number"


def count(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``."""

    def whole(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low:,} to {high:,}, got {text}")
        return value

    whole.__name__ = "whole number"
    return whole


def float_between(low: float, high: float = math.inf, low_included: bool = True) -> Callable[[str], float]:
    """An argparse type: a finite number from ``low`` (or above it) up to, not including, ``high``."""

    def number(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if not ((value >= low if low_included else value > low) and value < high):
            bounds = f"{'at least' if low_included else 'above'} {low:g}" + (f" and below {high:g}" * (high < math.inf))
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text}")
        return value

    return number  # argparse names the type in its message: "invalid number value: 'x'"


SEED_LIMIT = 2**63
"""torch's generators take a signed 64-bit seed."""


def seed(text: str) -> int:
    value = int(text)
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"must be between 0 and 2**63 - 1, got {value}")
    return value


MAX_THREADS = 1024
"""More CPU threads than any machine has crash torch's thread pool rather than fail."""


def threads(text: str) -> int:
    value = positive_int(text)
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_THREADS}, got {value}")
    return value


threads.__name__ = "thread count"


def _parts(text: str) -> list[str]:
    return text.lower().replace("×", "x").split("x")


def input_dims(text: str) -> tuple[int, int, int]:
    """``--input``: CxHxW, three whole numbers of at least 1."""
    parts = _parts(text)
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected CxHxW, e.g. 3x384x384, got {text}")
    channels, height, width = (int(p) for p in parts)
    return channels, height, width


input_dims.__name__ = "CxHxW"


def image_size(text: str) -> tuple[int, int]:
    """``--size``: N (a square) or HxW, whole numbers of at least 1."""
    parts = _parts(text)
    if len(parts) not in (1, 2) or not all(p.isascii() and p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected N or HxW, e.g. 32 or 32x48, got {text}")
    return int(parts[0]), int(parts[-1])


image_size.__name__ = "N|HxW"


def batch_sizes(text: str) -> list[int]:
    """``bench --batch``: one batch size or several, comma-separated."""
    try:
        return [positive_int(part) for part in text.split(",")]
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(f"expected sizes of at least 1, like 1,8, got {text}") from None


batch_sizes.__name__ = "batch sizes"


class Renamed(argparse.Action):
    """An old spelling of an option: hidden from ``--help``, stores into its replacement's destination.

    ``values`` maps an old value to the new one (``--dtype bfloat16`` → ``bf16-mixed``); ``constant``
    is what a flag stores (``--amp`` → ``bf16-mixed``). Each use leaves a warning naming the new
    spelling, collected under :data:`DEPRECATIONS`.
    """

    def __init__(
        self,
        option_strings: Sequence[str],
        dest: str,
        replacement: str = "",
        values: Mapping[str, str] | None = None,
        constant: Any = None,
        nargs: int | str | None = None,
        **kwargs: Any,
    ) -> None:
        self.replacement = replacement
        self.renamed_values = dict(values or {})
        super().__init__(
            option_strings, dest, nargs=0 if constant is not None else nargs, const=constant,
            choices=list(self.renamed_values) or None, help=argparse.SUPPRESS, **kwargs,
        )  # fmt: skip

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: str | None = None
    ) -> None:
        new: Any
        if self.const is True:
            new, shown = True, self.replacement
        elif self.const is not None:
            new, shown = self.const, f"{self.replacement} {self.const}"
        elif self.renamed_values:
            new = self.renamed_values[values]
            shown = f"{self.replacement} {new}"
        else:
            new, shown = values, self.replacement
        setattr(namespace, self.dest, new)
        old = f"{option} {values}" if self.renamed_values else option
        _warn(namespace, f"{old} is deprecated and will be removed in the next release: use {shown}")


class RenamedValues(argparse.Action):
    """A value option where some old values are renamed (``diff --format text`` → ``table``).

    The old values are accepted but left out of the help's list of choices.
    """

    def __init__(self, option_strings: Sequence[str], dest: str, renamed: Mapping[str, str], **kwargs: Any) -> None:
        self.renamed_values = dict(renamed)
        choices = list(kwargs.pop("choices"))
        kwargs.setdefault("metavar", "{" + ",".join(choices) + "}")
        super().__init__(option_strings, dest, choices=[*choices, *self.renamed_values], **kwargs)

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: str | None = None
    ) -> None:
        if values in self.renamed_values:
            new = self.renamed_values[values]
            _warn(
                namespace,
                f"{option} {values} is deprecated and will be removed in the next release: use {option} {new}",
            )
            values = new
        setattr(namespace, self.dest, values)


def _warn(namespace: argparse.Namespace, message: str) -> None:
    found = getattr(namespace, DEPRECATIONS, None)
    if found is None:
        found = []
        setattr(namespace, DEPRECATIONS, found)
    if message not in found:
        found.append(message)


def deprecations(args: argparse.Namespace) -> list[str]:
    """The warnings the old spellings on this command line left, in the order they were given."""
    return list(getattr(args, DEPRECATIONS, []))


def add_input(parser: argparse.ArgumentParser) -> None:
    """``--input CxHxW`` and its short form ``--size N|HxW``: one or the other."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--input", type=input_dims, metavar="CxHxW", help=INPUT_HELP)
    group.add_argument("--size", type=image_size, metavar="N|HxW", help=SIZE_HELP)


def input_overrides(args: argparse.Namespace) -> list[str]:
    """The ``--set`` overrides that ``--input`` or ``--size`` stand for."""
    found = []
    if args.input is not None:
        found.append(f"input.channels={args.input[0]}")
    size = args.input[1:] if args.input is not None else args.size
    if size is not None:
        found.append(f"input.size=[{size[0]}, {size[1]}]")
    return found


def add_format(
    parser: argparse.ArgumentParser, choices: Sequence[str], renamed: Mapping[str, str] | None = None
) -> None:
    """``--format`` from :data:`FORMATS` (default ``table``); ``renamed`` old values still work with a warning."""
    unknown = set(choices) - set(FORMATS)
    assert not unknown, f"--format {unknown}: not in the shared vocabulary"
    shown = ", ".join(f"{name} {FORMATS[name]}" for name in choices)
    help = f"output format: {shown} (default: table)"
    if renamed:
        parser.add_argument(
            "--format", action=RenamedValues, renamed=renamed, choices=choices, default="table", help=help
        )
    else:
        parser.add_argument("--format", choices=choices, default="table", help=help)


def add_precision(parser: argparse.ArgumentParser, choices: Sequence[str], what: str, default: str = "fp32") -> None:
    """``--precision`` from :data:`PRECISIONS`; ``what`` says what it sets for this command."""
    unknown = set(choices) - set(PRECISIONS)
    assert not unknown and default in choices, f"--precision {unknown or default}: not in the shared vocabulary"
    parser.add_argument(
        "--precision", choices=choices, default=default,
        help=f"{what}: " + "; ".join(f"{name} {PRECISIONS[name]}" for name in choices) + f" (default: {default})",
    )  # fmt: skip


def add_force(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help=FORCE_HELP)


def add_no_budget(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-budget", action="store_true", help=NO_BUDGET_HELP)
