"""The component registry: one decorator binds a ``type:`` name to its spec class.

A component's spec class carries its plan rule (``plan``) and its build function (``build``), so
registering the class registers all three at once. Specs find their discriminated unions here and the
builder finds build functions here; neither ever branches on a type name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from archspec.errors import ArchspecError, did_you_mean

if TYPE_CHECKING:
    from torch import nn

    from archspec.nodes import Node
    from archspec.specbase import ComponentSpec

KINDS = ("stem", "downsample", "block", "part", "mixer", "ffn", "norm", "act", "head")
"""Every kind of component, roughly in the order a model runs them."""

ENTRY_POINT_GROUP = "archspec.components"
"""Installed packages add components by naming a module (or a spec class) in this entry-point group."""

_COMPONENTS: dict[str, dict[str, type[ComponentSpec]]] = {kind: {} for kind in KINDS}
_ORIGINS: dict[type[ComponentSpec], str] = {}
plugin_errors: list[str] = []
"""Plugins that failed to load, one message each; archspec keeps working without them."""

C = TypeVar("C", bound="type[ComponentSpec]")


class RegistryError(ArchspecError):
    """A component name is unknown, or registered twice."""

    code = "AS901"


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
    load_plugins()
    table = _COMPONENTS[kind]
    try:
        return table[name]
    except KeyError:
        valid = ", ".join(sorted(table))
        raise RegistryError(f"unknown {kind} type {name!r}{did_you_mean(name, table)} (valid: {valid})") from None


def build_node(node: Node) -> nn.Module:
    """Build a planned component node with the ``build`` of the component that planned it."""
    return get(node.kind, node.component).build(node)


def default(kind: str, name: str) -> Any:
    """An instance of a component with every field at its default (typed Any: its class depends on ``kind``)."""
    return get(kind, name).model_validate({})


def origin(cls: type[ComponentSpec]) -> str:
    """Where a component comes from: ``archspec`` or the plugin distribution that registered it."""
    return _ORIGINS.get(cls, "archspec" if cls.__module__.startswith("archspec.") else cls.__module__)


def load_plugins() -> None:
    """Register the built-in components, then import every ``archspec.components`` entry point, once.

    Each component registers itself when its module is imported. Only packages installed in the
    environment can add components: a spec names types, never modules. Every lookup below calls
    this first, so the registry is complete whoever asks first.
    """
    if getattr(load_plugins, "done", False):
        return
    import archspec.components  # noqa: F401  (a broken install fails here, loudly, every time)

    load_plugins.done = True  # type: ignore[attr-defined]
    from importlib.metadata import entry_points

    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        before = set(components())
        dist = entry_point.dist
        source = f"{dist.name} {dist.version}" if dist is not None else entry_point.value
        try:
            loaded = entry_point.load()
            if isinstance(loaded, type) and loaded not in before and hasattr(loaded, "kind"):
                register(loaded)
        except Exception as exc:  # a broken plugin must not take archspec down with it
            plugin_errors.append(f"plugin {entry_point.name!r} ({source}) failed to load: {type(exc).__name__}: {exc}")
            continue
        for cls in set(components()) - before:
            _ORIGINS[cls] = f"{source} ({entry_point.value})"


def names(kind: str) -> list[str]:
    load_plugins()
    return sorted(_COMPONENTS[kind])


def components(kind: str | None = None) -> list[type[ComponentSpec]]:
    """All registered component classes, optionally of one kind, in registration order."""
    load_plugins()
    kinds = KINDS if kind is None else (kind,)
    return [cls for k in kinds for cls in _COMPONENTS[k].values()]
