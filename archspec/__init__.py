"""archspec: describe a vision backbone in YAML, get a checked plan and a PyTorch module.

The planning half (``load_spec``, ``resolve``) never imports torch; ``build`` does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from archspec.errors import ArchspecError, CheckError, SpecError, SpecFileError
from archspec.nodes import Plan
from archspec.plan import PlanCache, resolve

if TYPE_CHECKING:
    from torch import nn

    from archspec.checks import CheckReport
    from archspec.spec import LoadedSpec, ModelSpec, load_spec, validate

__version__ = "0.1.0"

_FROM_SPEC = ("LoadedSpec", "ModelSpec", "load_spec", "validate")
"""Loaded on first use: the spec models need pydantic, which ``archspec.cli`` imports only once its
garbage-collector setting is in place (see :func:`archspec.cli.run`)."""
_FROM_CHECKS = ("CheckReport",)
"""Loaded on first use: :mod:`archspec.checks` imports torch."""


def __getattr__(name: str) -> Any:
    if name in _FROM_SPEC:
        value = getattr(importlib.import_module("archspec.spec"), name)
        globals()[name] = value
        return value
    if name in _FROM_CHECKS:
        value = getattr(importlib.import_module("archspec.checks"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'archspec' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API (what ``__all__`` names) and the version; not this module's imports."""
    return sorted({*__all__, "__version__"})


def plan(spec: ModelSpec | LoadedSpec, cache: PlanCache | None = None) -> Plan:
    """Resolve a spec into its :class:`Plan`; problems are located in the spec's file when known.

    A :class:`~archspec.plan.PlanCache` given to many calls plans each distinct block once.
    """
    from archspec.spec import LoadedSpec

    if isinstance(spec, LoadedSpec):
        try:
            return resolve(spec.spec, cache)
        except SpecError as exc:
            raise exc.with_source(spec.source) from None
    return resolve(spec, cache)


def build(spec_or_plan: ModelSpec | LoadedSpec | Plan, **kwargs: Any) -> nn.Module:
    """Build an ``nn.Module`` from a spec or plan; keyword arguments go to :func:`archspec.builder.build`."""
    from archspec.builder import build as build_plan

    resolved = spec_or_plan if isinstance(spec_or_plan, Plan) else plan(spec_or_plan)
    return build_plan(resolved, **kwargs)


def check(model: nn.Module, plan: Plan, **kwargs: Any) -> CheckReport:
    """Check a model built from ``plan`` against it, as ``archspec build`` does: its parameter count, a
    forward pass on a random batch and the output shapes, and with ``grad=True`` a backward pass in which
    every parameter gets a gradient; raises :class:`CheckError`. Keyword arguments (``batch``,
    ``device``, ``dtype``, ``grad``) go to :func:`archspec.checks.check`."""
    from archspec.checks import check as check_model

    return check_model(model, plan, **kwargs)


def create_model(name_or_path: str, **kwargs: Any) -> nn.Module:
    """Build a shipped spec by name, or a spec file; see :func:`archspec.models.create_model`."""
    from archspec.models import create_model as create

    return create(name_or_path, **kwargs)  # type: ignore[no-any-return]


def fsdp_policy(model: nn.Module) -> list[nn.Module]:
    """Modules to shard one by one with FSDP2 (every block); see :mod:`archspec.distributed`."""
    from archspec.distributed import fsdp_policy as policy

    return policy(model)


def list_specs() -> list[str]:
    """Names of the shipped specs (``spectformer``, ``spectformer-h-s``, ...)."""
    from archspec.models import list_specs as names

    return names()


__all__ = [
    "ArchspecError",
    "CheckError",
    "CheckReport",
    "LoadedSpec",
    "ModelSpec",
    "Plan",
    "PlanCache",
    "SpecError",
    "SpecFileError",
    "build",
    "check",
    "create_model",
    "fsdp_policy",
    "list_specs",
    "load_spec",
    "plan",
    "resolve",
    "validate",
]
