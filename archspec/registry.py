"""The component registry: one decorator binds a ``type:`` name to its spec class.

A component's spec class carries its plan rule (``plan``) and its build function (``build``), so
registering the class registers all three at once. Specs find their discriminated unions here and the
builder finds build functions here; neither ever branches on a type name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from archspec.errors import ArchspecError, did_you_mean

if TYPE_CHECKING:
    from archspec.specbase import ComponentSpec

KINDS = ("stem", "downsample", "mixer", "ffn", "head")
"""Every slot a component can fill, in the order a model runs them."""

_COMPONENTS: dict[str, dict[str, type[ComponentSpec]]] = {kind: {} for kind in KINDS}

C = TypeVar("C", bound="type[ComponentSpec]")


class RegistryError(ArchspecError):
    """A component name is unknown, or registered twice."""


def register(cls: C) -> C:
    """Class decorator: register a component spec under its ``kind`` and ``type`` tag."""
    kind = cls.kind
    name = cls.type_name()
    if kind not in _COMPONENTS:
        raise RegistryError(f"{cls.__qualname__}: unknown component kind {kind!r} (valid: {', '.join(KINDS)})")
    table = _COMPONENTS[kind]
    if name in table:
        other = table[name]
        raise RegistryError(
            f"{kind} component {name!r} is registered twice: {other.__module__}.{other.__qualname__} "
            f"and {cls.__module__}.{cls.__qualname__}"
        )
    table[name] = cls
    return cls


def get(kind: str, name: str) -> type[ComponentSpec]:
    """Look up a component; an unknown name lists the valid ones."""
    table = _COMPONENTS[kind]
    try:
        return table[name]
    except KeyError:
        valid = ", ".join(sorted(table))
        raise RegistryError(f"unknown {kind} type {name!r}{did_you_mean(name, table)} (valid: {valid})") from None


def default(kind: str, name: str) -> Any:
    """An instance of a component with every field at its default (typed Any: its class depends on ``kind``)."""
    return get(kind, name).model_validate({})


def names(kind: str) -> list[str]:
    return sorted(_COMPONENTS[kind])


def components(kind: str | None = None) -> list[type[ComponentSpec]]:
    """All registered component classes, optionally of one kind, in registration order."""
    kinds = KINDS if kind is None else (kind,)
    return [cls for k in kinds for cls in _COMPONENTS[k].values()]
