"""The spec format: what a user writes, validated strictly and nothing derived.

Component slots (``stem``, ``downsample``, ``block``, ``mixer``, ``ffn``, ``norm``, ``head``, and the
norms and activations inside components) look their ``type:`` up in the registry when a spec is
validated, so a component is accepted as soon as it registers, whenever that is.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import Field, ValidationError, field_validator, model_validator

from archspec import registry
from archspec.compose import Override, load_document, parse_override, read_document, shipped_path
from archspec.errors import KeyPath, Problem, SourceMap, SpecError, did_you_mean
from archspec.slots import Slot, _SlotSchema, default_component
from archspec.specbase import (
    BlockSpec,
    ComponentSpec,
    DownsampleSpec,
    FfnSpec,
    HeadSpec,
    MixerSpec,
    NormSpec,
    StemSpec,
    StrictModel,
)

MAX_IMAGE_SIZE = 16_384
"""Bounds on sizes keep a typo (``depth: 1000000000``) from hanging the planner; see also the ``le=`` limits."""

MAX_PROBLEMS = 100
"""Problems reported one by one for a spec; past these, one line says how many more there are."""

MAX_BLOCKS = 1_024
"""Upper bound on the blocks of all stages together, checked before planning (the deepest published
ResNets have a few hundred)."""


_Side = Annotated[int, Field(ge=1, le=MAX_IMAGE_SIZE)]


class InputSpec(StrictModel):
    """Image channels and size; ``size: 224`` means 224×224, ``size: [256, 320]`` is height × width."""

    channels: int = Field(3, ge=1, le=4096)
    size: tuple[int, int] = Field((224, 224))

    @field_validator("size", mode="before", json_schema_input_type=_Side | tuple[_Side, _Side])
    @classmethod
    def _square(cls, value: Any) -> Any:
        return (value, value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("size")
    @classmethod
    def _positive(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) < 1 or max(value) > MAX_IMAGE_SIZE:
            raise ValueError(f"image size must be between 1 and {MAX_IMAGE_SIZE:,}, got {value[0]}×{value[1]}")
        return value

    @property
    def hw(self) -> tuple[int, int]:
        return self.size


class StageEdit(StrictModel):
    """One entry of a stage's ``each``: the block, mixer and FFN that its blocks use instead of the stage's.

    An entry's mapping without a ``type`` (or with the stage's own) is an edit of the stage's value, merged
    key by key (``{mixer: {shift: 3}}``); with another ``type`` it replaces the stage's value.
    """

    block: Slot[BlockSpec] | None = None
    mixer: Slot[MixerSpec] | None = None
    ffn: Slot[FfnSpec] | None = None


class StageSpec(StrictModel):
    """One stage: ``depth`` blocks of width ``dim``, entered through ``downsample`` (stages after the first).

    ``block`` is the form of every block; ``mixer`` and ``ffn`` fill its token-mixing and channel-mixing
    parts (a ResNet block has neither). ``norm`` is applied to the stage's output. ``each`` changes
    blocks one by one: block ``j`` takes entry ``j % len(each)``, so a short list repeats to the depth.
    """

    dim: int = Field(ge=1, le=65_536)
    depth: int = Field(ge=1, le=1_000)
    block: Slot[BlockSpec] = Field(default_factory=default_component("block", "prenorm"))
    mixer: tuple[Slot[MixerSpec], ...] | None = Field(None, min_length=1, max_length=1_000)
    ffn: Slot[FfnSpec] = Field(default_factory=default_component("ffn", "mlp"))
    norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "layernorm"))
    downsample: Slot[DownsampleSpec] | None = None
    each: tuple[StageEdit, ...] | None = Field(None, min_length=1, max_length=1_000)

    @field_validator("mixer", mode="before", json_schema_input_type=Slot[MixerSpec] | list[Slot[MixerSpec]] | None)
    @classmethod
    def _one_or_pattern(cls, value: Any) -> Any:
        # A single mapping (or type name) is the mixer for every block; a list is a per-block pattern.
        return (value,) if isinstance(value, dict | str) else value

    @model_validator(mode="before")
    @classmethod
    def _edits_merged(cls, data: Any) -> Any:
        return edits_merged(data)

    @model_validator(mode="after")
    def _each_fits(self) -> StageSpec:
        if self.each is not None and len(self.each) > self.depth:
            raise ValueError(f"'each' has {len(self.each)} entries but the stage has depth {self.depth}")
        return self

    def edit(self, index: int) -> StageEdit | None:
        """The ``each`` entry that block ``index`` takes, if the stage has any."""
        return None if self.each is None else self.each[index % len(self.each)]


def edits_merged(data: Any) -> Any:
    """Each ``each`` entry's edits merged onto the stage's own block, mixer and FFN, so that every entry
    holds whole components (validated where the user wrote the edit)."""
    if not isinstance(data, dict) or not isinstance(data.get("each"), list | tuple):
        return data
    bases = {key: data.get(key, _written_default(key)) for key in StageEdit.model_fields}
    if isinstance(bases["mixer"], list | tuple):
        bases["mixer"] = bases["mixer"][0] if len(bases["mixer"]) == 1 else None  # a pattern: no single base
    entries = [
        {key: merge_edit(bases[key], value) if key in bases else value for key, value in entry.items()}
        if isinstance(entry, dict)
        else entry
        for entry in data["each"]
    ]
    return {**data, "each": entries}


def _written_default(key: str) -> Any:
    field = StageSpec.model_fields[key]
    if field.default_factory is None:
        return None
    default = field.get_default(call_default_factory=True)
    return {**default.model_dump(mode="json", exclude_unset=True), "type": default.type}


def merge_edit(base: Any, edit: Any) -> Any:
    """``edit`` applied to ``base`` (both as written): mappings merge key by key unless the edit names
    another ``type``; anything else replaces. A bare type name stands for ``{type: name}``."""
    if isinstance(base, str) and isinstance(edit, dict):
        base = {"type": base}
    if not isinstance(base, dict) or not isinstance(edit, dict):
        return edit
    if edit.get("type", base.get("type")) != base.get("type"):
        return edit
    merged = dict(base)
    for key, value in edit.items():
        merged[key] = merge_edit(base[key], value) if key in base else value
    return merged


class FeaturesSpec(StrictModel):
    """Declares the model a backbone: ``create_model`` then returns these stages' feature maps."""

    out_indices: tuple[Annotated[int, Field(ge=0, le=63)], ...] = Field((0, 1, 2, 3), min_length=1, max_length=64)


class ModelSpec(StrictModel):
    """A whole model: input, stem, stages, head (and, for backbones, the features to return)."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$", max_length=64)
    input: InputSpec = InputSpec()
    num_classes: int = Field(1000, ge=1, le=1_000_000)
    drop_path_rate: float = Field(0.0, ge=0, lt=1)
    stem: Slot[StemSpec] = Field(default_factory=default_component("stem", "conv"))
    stages: tuple[StageSpec, ...] = Field(min_length=1, max_length=64)
    head: Slot[HeadSpec] = Field(default_factory=default_component("head", "pool"))
    features: FeaturesSpec | None = None

    @field_validator("stages")
    @classmethod
    def _bounded(cls, stages: tuple[StageSpec, ...]) -> tuple[StageSpec, ...]:
        total = sum(stage.depth for stage in stages)
        if total > MAX_BLOCKS:
            raise ValueError(f"the stages hold {total:,} blocks in all; a model may have at most {MAX_BLOCKS:,}")
        return stages


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec and where each of its keys was written."""

    spec: ModelSpec
    source: SourceMap


def validate(data: Any, source: SourceMap | None = None) -> ModelSpec:
    """Validate plain data (as parsed from YAML) into a :class:`ModelSpec`, or raise :class:`SpecError`."""
    if not isinstance(data, dict):
        raise SpecError([Problem((), f"a spec must be a mapping of keys, got {_kind_of(data)}")], source)
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        kept = [error for error in errors if not _echoes_item_errors(error, errors)]
        if len(kept) > MAX_PROBLEMS and source is not None:  # show the first ones in the file
            kept.sort(key=lambda error: _line_column(source, _user_path(error["loc"], data, error["type"])))
        problems = [_problem(error, data) for error in kept[:MAX_PROBLEMS]]
        if len(kept) > MAX_PROBLEMS:  # the rest are counted where they start, not listed
            first = _problem(kept[MAX_PROBLEMS], data)
            more = f"and {len(kept) - MAX_PROBLEMS:,} more problems from here on (the first {MAX_PROBLEMS} are shown)"
            problems.append(Problem(first.path, more, first.code))
        raise SpecError(problems, source) from None


def _line_column(source: SourceMap, path: KeyPath) -> tuple[int, int]:
    where = source.locate(path)
    return where.line, where.column


class SpecFile:
    """A spec file read and merged with its bases once; :meth:`load` applies overrides to a copy and
    validates it, as :func:`load_spec` does. A sweep reads each file once this way."""

    def __init__(self, path: str | Path) -> None:
        self.path = shipped_path(path)
        self.document = read_document(self.path, keys={*ModelSpec.model_fields, "extends"})

    def load(self, overrides: Sequence[str | Override] = ()) -> LoadedSpec:
        parsed = [o if isinstance(o, Override) else parse_override(o) for o in overrides]
        data, positions = self.document.with_overrides(parsed)
        source = SourceMap(str(self.path), positions)
        return LoadedSpec(validate(data, source), source)


def load_spec(path: str | Path, overrides: Sequence[str | Override] = ()) -> LoadedSpec:
    """Read a spec file, merge its ``extends`` bases, apply ``--set`` style overrides and validate.

    Args:
        path: the spec file, or the name of a shipped spec (``spectformer-h-s``, ``resnet50``).
        overrides: ``"key.path=value"`` strings or parsed :class:`~archspec.compose.Override` objects.
    """
    parsed = [o if isinstance(o, Override) else parse_override(o) for o in overrides]
    path = shipped_path(path)
    data, positions = load_document(path, parsed, keys={*ModelSpec.model_fields, "extends"})
    source = SourceMap(str(path), positions)
    return LoadedSpec(validate(data, source), source)


def _echoes_item_errors(error: Any, errors: list[Any]) -> bool:
    """A list's "too short" error that is only there because its items failed to validate."""
    if error["type"] != "too_short":
        return False
    loc = error["loc"]
    return any(other is not error and other["loc"][: len(loc)] == loc for other in errors)


def _kind_of(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


def _user_path(loc: tuple[int | str, ...], data: Any, kind: str = "missing") -> KeyPath:
    """Map a pydantic error location onto the keys the user wrote.

    Pydantic adds steps the user never wrote (a union member's tag, validator names); those are
    dropped by walking the raw data alongside. A last step missing from the data is kept when it names
    the key the error is about (a missing key, an unknown one), not for an error about the mapping itself
    (``kind`` ``value_error``: a rule across its fields, whose last step is a union member's tag).
    """
    path: list[int | str] = []
    current = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(current, dict) and isinstance(part, str):
            if part in current:
                path.append(part)
                current = current[part]
            elif last and part != current.get("type") and kind != "value_error":
                path.append(part)
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            path.append(part)
            current = current[part]
    return tuple(path)


def _model_at(path: KeyPath, data: Any) -> type[StrictModel] | None:
    """The spec class that validates the mapping at ``path`` (union members picked by their ``type``)."""
    annotation: Any = ModelSpec
    current = data
    for part in path:
        model = _pick_model(annotation, current)
        if model is StageSpec:
            current = edits_merged(current)  # an ``each`` edit is known by the component it edits
        if isinstance(part, str):
            if model is None or part not in model.model_fields:
                return None
            info = model.model_fields[part]
            # pydantic keeps a field's Annotated metadata (a Slot's schema) apart from its annotation
            annotation = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        else:
            annotation = _item_type(annotation)
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and isinstance(part, int):
            current = current[part]
        else:
            current = None
    return _pick_model(annotation, current)


def _item_type(annotation: Any) -> Any:
    args = [a for a in typing.get_args(_strip(annotation)) if a is not Ellipsis]
    return args[0] if args else None


def _strip(annotation: Any) -> Any:
    """The type under ``Annotated`` wrappers and an ``| None``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType) and type(None) in typing.get_args(annotation):
            rest = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation


def _models_in(annotation: Any) -> list[type[StrictModel]]:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        for meta in typing.get_args(annotation)[1:]:
            if isinstance(meta, _SlotSchema):
                return list(registry.components(meta.kind))
        return _models_in(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]
    if isinstance(annotation, type) and issubclass(annotation, StrictModel):
        return [annotation]
    return []


def _pick_model(annotation: Any, value: Any) -> type[StrictModel] | None:
    if isinstance(value, dict) and typing.get_origin(_strip(annotation)) in (tuple, list):
        annotation = _item_type(annotation)  # a single mapping written where a list is allowed
    models = _models_in(annotation)
    tag = value.get("type") if isinstance(value, dict) else None
    for model in models:
        if "type" in model.model_fields and model.model_fields["type"].default == tag:
            return model
    return models[0] if len(models) == 1 else None


def _problem(error: Any, data: Any) -> Problem:
    kind = error["type"]
    path = _user_path(error["loc"], data, error["type"])
    ctx = error.get("ctx", {})
    if kind == "extra_forbidden":
        key = str(path[-1])
        model = _model_at(path[:-1], data)
        valid = list(model.model_fields) if model else []
        hint = did_you_mean(key, valid) or (f" (valid keys: {', '.join(valid)})" if valid else "")
        owner = f" for {model.kind} '{model.type_name()}'" if model and issubclass(model, ComponentSpec) else ""
        return Problem(path, f"unknown key '{key}'{owner}{hint}", "AS201")
    if kind == "missing":
        return Problem(path, f"missing required key '{path[-1]}'", "AS202")
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        slot = str(ctx.get("kind", "component"))
        valid = list(ctx.get("valid", []))
        listing = ", ".join(valid)
        if kind == "union_tag_not_found":
            return Problem(path, f"missing 'type' (one of: {listing})", "AS202")
        tag = str(ctx.get("tag", ""))
        message = f"unknown {slot} type '{tag}'{did_you_mean(tag, valid)} (valid: {listing})"
        return Problem((*path, "type"), message, "AS203")
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if kind in ("dict_type", "model_type"):  # pydantic names its model class: say what a user writes
        message = "input should be a mapping of keys"
    message = message[:1].lower() + message[1:]
    value = error.get("input")
    if isinstance(value, str | int | float | bool) and kind != "value_error":
        message += f" (got {value!r})"
    return Problem(path, message)
