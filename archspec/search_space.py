"""The space file of ``archspec search``: a base spec, the ranges to search over, and limits on the plan.

```yaml
spec: ../digits/spectformer-digits.yaml        # the base: a path relative to this file, or a shipped name
space:
  stages.0.dim: {int: [16, 48], step: 16}      # whole numbers from 16 to 48 in steps of 16
  drop_path_rate: {float: [0.0, 0.2]}          # any number in the range (step or log: optional)
  stages.1.mixer.type: [spectral, attention]   # a list: one of these values
  stages.1.mixer.heads: {choice: [2, 4], when: {stages.1.mixer.type: attention}}
constraints: {max_params: 1000000, max_gflops: 0.05, max_activation_mib: 4}
```

Each key of ``space`` is a ``--set`` key path; a proposal is one value per key, applied to the base as
``--set`` overrides are. ``when`` makes a key conditional on keys declared above it (a value, or a
list of values, each must take). The file is read as specs are (the same limits, no code, duplicate
keys refused) and checked before any search: every problem is reported at its file, line and
column. Candidates that do not plan, or whose plan breaks a constraint, are never trained.
Nothing here imports torch or Optuna.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from archspec.compose import OverrideError, parse_override, shipped_path
from archspec.errors import ArchspecError, Problem, SourceMap, SpecError, SpecFileError
from archspec.loader import read_spec_file
from archspec.specbase import StrictModel

Scalar = bool | int | float | str | None

MAX_AXES = 64
"""A space declares at most this many keys (the search gets no better past a few dozen)."""
MAX_CHOICES = 1_000


class Axis(StrictModel):
    """One searched key: ``int`` or ``float`` (a closed range, optionally stepped or on a log scale) or
    ``choice`` (a list of values, any YAML a ``--set`` takes), and an optional ``when`` condition."""

    int_range: tuple[int, int] | None = Field(None, alias="int", description="[low, high], both included")
    float_range: tuple[float, float] | None = Field(None, alias="float", description="[low, high], both included")
    choice: tuple[Any, ...] | None = Field(None, min_length=1, max_length=MAX_CHOICES)
    step: float | None = Field(None, gt=0, description="spacing of the values from low (int: default 1)")
    log: bool = Field(False, description="sample on a log scale (low must be above 0; no step)")
    when: dict[str, Scalar | tuple[Scalar, ...]] | None = Field(
        None, description="search this key only when each named key above took this value (or one of these)"
    )

    @model_validator(mode="before")
    @classmethod
    def _list_is_choice(cls, data: Any) -> Any:
        return {"choice": data} if isinstance(data, list | tuple) else data

    @model_validator(mode="after")
    def _one_kind(self) -> Axis:
        kinds = [name for name, value in (("int", self.int_range), ("float", self.float_range),
                                          ("choice", self.choice)) if value is not None]  # fmt: skip
        if len(kinds) != 1:
            found = " and ".join(kinds) if kinds else "none of them"
            raise ValueError(f"give one of int, float or choice (found {found})")
        bounds = self.int_range or self.float_range
        if bounds is not None:
            low, high = bounds
            if not low <= high:
                raise ValueError(f"the range [{low}, {high}] is empty: low must not exceed high")
            if self.log and low <= 0:
                raise ValueError(f"log: the range [{low}, {high}] must lie above 0")
            if self.log and self.step is not None:
                raise ValueError("give step or log, not both")
        if self.int_range is not None and self.step is not None and not float(self.step).is_integer():
            raise ValueError(f"step {self.step:g}: an int range steps by whole numbers")
        if self.choice is not None and (self.step is not None or self.log):
            raise ValueError("step and log belong to int and float ranges, not to a choice")
        return self

    @property
    def kind(self) -> Literal["int", "float", "choice"]:
        return "int" if self.int_range is not None else "float" if self.float_range is not None else "choice"

    def probe_values(self) -> list[Any]:
        """The values checked on their own before a search: every choice, or both ends of a range."""
        if self.choice is not None:
            return list(self.choice)
        bounds = self.int_range or self.float_range
        assert bounds is not None
        return list(dict.fromkeys(bounds))

    def values(self) -> list[Any] | None:
        """Every value the axis can take, when there are finitely many; None for a continuous range."""
        if self.choice is not None:
            return list(self.choice)
        if self.int_range is not None:
            return list(range(self.int_range[0], self.int_range[1] + 1, int(self.step or 1)))
        if self.float_range is not None and self.step is not None and not self.log:
            low, high = self.float_range
            return [low + i * self.step for i in range(int((high - low) // self.step) + 1)]
        return None

    def describe(self) -> str:
        if self.choice is not None:
            return "one of " + ", ".join(setting_value(value) for value in self.choice)
        bounds = self.int_range or self.float_range
        assert bounds is not None
        extra = f" in steps of {self.step:g}" if self.step is not None else " on a log scale" if self.log else ""
        return f"{self.kind} from {bounds[0]:g} to {bounds[1]:g}{extra}"


class Constraints(StrictModel):
    """Limits on the plan of a candidate, as trained (after it is fitted to the data)."""

    max_params: int | None = Field(None, ge=1, description="at most this many parameters")
    max_gflops: float | None = Field(None, gt=0, description="at most this many GFLOPs per image")
    max_activation_mib: float | None = Field(
        None, gt=0, description="at most this many MiB of float32 activations per image (the plan's estimate)"
    )


class SpaceFile(StrictModel):
    """A search space: the base spec, the searched keys in order, and optional constraints."""

    spec: str = Field(min_length=1, description="the base spec: a path relative to this file, or a shipped name")
    space: dict[str, Axis] = Field(min_length=1, max_length=MAX_AXES)
    constraints: Constraints = Field(default_factory=Constraints)

    @field_validator("space", mode="before")
    @classmethod
    def _keys_are_paths(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str):
                    raise ValueError(f"key {key!r}: a key path like stages.2.depth, written as text")
        return value


@dataclass(frozen=True)
class Space:
    """A checked space file: where it is, the base spec's path, and what it declares."""

    path: Path
    base: Path
    axes: dict[str, Axis]
    constraints: Constraints
    source: SourceMap

    def size(self, limit: int = 100_000) -> int | None:
        """How many distinct candidates the space holds, conditions applied; None with a continuous axis or
        past ``limit``."""
        values = [axis.values() for axis in self.axes.values()]
        if any(found is None for found in values):
            return None
        axes = list(self.axes.items())

        def count(index: int, chosen: dict[str, Any]) -> int:
            if index == len(axes):
                return 1
            key, axis = axes[index]
            if any(not holds(chosen.get(other), wanted) for other, wanted in (axis.when or {}).items()):
                return count(index + 1, chosen)
            total = 0
            for value in values[index] or ():
                total += count(index + 1, {**chosen, key: value})
                if total > limit:
                    raise OverflowError
            return total

        try:
            return count(0, {})
        except OverflowError:
            return None

    def fingerprint(self) -> str:
        """A digest of what decides the proposals (keys, kinds, ranges, conditions) and the base's path."""
        declared = {
            key: axis.model_dump(mode="json", by_alias=True, exclude_none=True) for key, axis in self.axes.items()
        }
        text = json.dumps([str(self.base.name), declared], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def setting_value(value: Any) -> str:
    """A value as a ``--set`` writes it: YAML in flow style on one line (floats without noise)."""
    if isinstance(value, float):
        return repr(round(value, 12))
    if isinstance(value, str):
        return value if yaml.safe_load(value) == value and value.strip() == value and value else json.dumps(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=math.inf, sort_keys=False)
    return text.strip().removesuffix("\n...").strip()


def setting(key: str, value: Any) -> str:
    return f"{key}={setting_value(value)}"


def load_space(path: str | Path, base: str | Path | None = None) -> Space:
    """Read and check a space file; every problem is located at its line and column (:class:`SpecError`).

    ``base``, when given, is the spec searched instead of the file's ``spec:`` (a path or a shipped name);
    the axes are checked against it.

    Raises:
        SpecFileError: (AS101) the file cannot be read or is not YAML.
        SpecError: (AS201, AS202, AS204) the file's keys or values are wrong; (AS1101) an axis gives no valid spec.
    """
    path = _space_path(path)
    data, source = read_spec_file(path)
    if not isinstance(data, dict):
        raise SpecError([Problem((), "a space file is a mapping with spec, space and constraints")], source)
    try:
        declared = SpaceFile.model_validate(data)
    except ValidationError as exc:
        raise SpecError([_problem(error) for error in exc.errors(include_url=False)], source) from None
    problems = _key_problems(declared.space)
    if base is not None:
        base = shipped_path(base)
        if not base.is_file():
            from archspec.compose import closest_shipped

            close = closest_shipped(str(base))
            raise SpecFileError(
                str(base), "no such file or shipped spec" + (f"; did you mean {', '.join(close)}?" if close else "")
            )
    else:
        base = _base_path(declared.spec, path)
        if base is None:
            problems.append(Problem(("spec",), f"{declared.spec}: no such file or shipped spec"))
    if problems:
        raise SpecError(problems, source)
    assert base is not None
    space = Space(path, base, declared.space, declared.constraints, source)
    probe_problems = _probe(space)
    if probe_problems:
        raise SpecError(probe_problems, source)
    return space


SHIPPED_SPACES = "search"
"""The folder of the shipped specs that holds the shipped space files."""


def shipped_spaces() -> list[Path]:
    from archspec.compose import SHIPPED_SPECS

    return sorted((SHIPPED_SPECS / SHIPPED_SPACES).glob("*.yaml"))


def _space_path(name_or_path: str | Path) -> Path:
    """A space file's path, or the shipped space of that name (``spectformer-digits``) when no such file exists."""
    path = Path(name_or_path)
    if path.exists() or path.suffix in (".yaml", ".yml") or "/" in str(name_or_path):
        return path
    return next((space for space in shipped_spaces() if space.stem == str(name_or_path)), path)


def _problem(error: Any) -> Problem:
    loc = tuple(part for part in error["loc"] if not (isinstance(part, str) and part in ("function-after", "Axis")))
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key" + (
            " (a space file has spec, space and constraints)"
            if len(loc) == 1
            else " (an axis has int, float, choice, step, log and when)"
            if len(loc) == 3 and loc[0] == "space"
            else ""
        )
    code = {"extra_forbidden": "AS201", "missing": "AS202"}.get(error["type"], "AS204")
    return Problem(loc, message, code)


def _key_problems(axes: Mapping[str, Axis]) -> list[Problem]:
    problems = []
    seen: dict[str, Axis] = {}
    for key, axis in axes.items():
        try:
            parse_override(f"{key}=0")
        except OverrideError:
            problems.append(Problem(("space", key), f"{key!r} is not a key path like stages.2.depth", "AS204"))
        for other, wanted in (axis.when or {}).items():
            where = ("space", key, "when", other)
            if other not in seen:
                above = "declared above" if other in axes else "in the space"
                problems.append(Problem(where, f"{other} must be a key {above} this one", "AS204"))
                continue
            values = wanted if isinstance(wanted, tuple) else (wanted,)
            possible = seen[other].choice
            if possible is not None:
                for value in values:
                    if value not in possible:
                        shown = ", ".join(setting_value(v) for v in possible)
                        message = f"{setting_value(value)} is not a value of {other} ({shown})"
                        problems.append(Problem(where, message, "AS204"))
        seen[key] = axis
    return problems


def _base_path(spec: str, space_path: Path) -> Path | None:
    beside = space_path.parent / spec
    if beside.is_file():
        return beside
    shipped = shipped_path(spec)
    return shipped if shipped.is_file() else None


def _probe(space: Space) -> list[Problem]:
    """An axis none of whose values gives a valid spec on its own (a typo in a key, a wrong type) is an error."""
    from archspec import plan
    from archspec.spec import SpecFile

    base = SpecFile(space.base)
    problems = []
    for key, axis in space.axes.items():
        first: str | None = None
        conditions = [setting(other, _first(wanted)) for other, wanted in (axis.when or {}).items()]
        for value in axis.probe_values():
            try:
                plan(base.load([*conditions, setting(key, value)]))
                first = None
                break
            except ArchspecError as exc:
                first = first or str(exc).splitlines()[0]
        if first is not None:
            problems.append(Problem(("space", key), f"no value of {key} gives a valid spec: {first}", "AS1101"))
    return problems


def holds(value: Any, wanted: Any) -> bool:
    """Whether a key's ``value`` meets a ``when`` condition: the value wanted, or one of a list of them."""
    return value in wanted if isinstance(wanted, tuple) else value == wanted


def _first(wanted: Any) -> Any:
    return wanted[0] if isinstance(wanted, tuple) else wanted


def space_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a space file."""
    schema = SpaceFile.model_json_schema(by_alias=True)
    # A plain list is a choice too; pydantic sees only the mapping the "before" validator makes of it.
    shorthand = {"type": "array", "minItems": 1, "maxItems": MAX_CHOICES, "description": "one of these values"}
    schema["properties"]["space"]["additionalProperties"] = {"anyOf": [{"$ref": "#/$defs/Axis"}, shorthand]}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "archspec search space"
    return schema
