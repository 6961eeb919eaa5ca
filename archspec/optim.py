"""Optimiser parameter groups: which parameters train with weight decay, read from one source.

A model's ``no_weight_decay()`` names every parameter to train without weight decay (see
:meth:`archspec.nn.Backbone.no_weight_decay`). :func:`parameter_groups` splits the trainable
parameters by it, by the same rule timm's optimizer factory applies to the same list
(``param_groups_weight_decay``: a parameter is exempt when it is 1-D, named ``*.bias`` or in the
list), so ``archspec fit`` and timm's ``create_optimizer_v2(model, "adamw", weight_decay=...)``
decay the same parameters.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from torch import nn

from archspec.nn.backbone import no_weight_decay_names

_WILDCARDS = frozenset("*?[")


def exempt_from_weight_decay(model: nn.Module) -> set[str]:
    """The names (or fnmatch patterns, as newer timm models give) of the parameters to train without decay.

    ``model.no_weight_decay()`` where the model has it; otherwise every 1-D parameter and ``*.bias``,
    with whatever its submodules name in their own ``no_weight_decay()`` (an archspec model inside a
    wrapper keeps its spectral filters and position embeddings exempt).
    """
    own = getattr(model, "no_weight_decay", None)
    if callable(own):
        return set(own())
    return no_weight_decay_names(model)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two optimiser groups for AdamW (or any torch optimiser): ``[decayed, exempt]``.

    The exempt group (weight decay 0) holds every trainable parameter :func:`exempt_from_weight_decay`
    names, or that is 1-D or named ``*.bias``; the decayed group (``weight_decay``) every other trainable
    parameter: the conv kernels and linear weight matrices. Frozen parameters are in neither. Either
    group may be empty.
    """
    exempt = exempt_from_weight_decay(model)
    patterns = [name for name in exempt if not _WILDCARDS.isdisjoint(name)]
    decay: list[nn.Parameter] = []
    free: list[nn.Parameter] = []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        exempted = parameter.ndim <= 1 or name.endswith(".bias") or name in exempt
        if exempted or any(fnmatchcase(name, pattern) for pattern in patterns):
            free.append(parameter)
        else:
            decay.append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": free, "weight_decay": 0.0}]
