"""The timm-style entry points: ``create_model`` and ``list_specs``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from archspec.compose import closest_shipped, shipped_path, shipped_specs
from archspec.errors import ArchspecError
from archspec.nodes import Plan

if TYPE_CHECKING:
    from archspec.nn import Backbone


def list_specs() -> list[str]:
    """Names of the shipped specs (``specs/`` and the zoo in ``specs/zoo/``), usable wherever a spec path
    is expected (``"spectformer-h-s"``, ``"resnet50"``)."""
    return sorted(path.stem for path in shipped_specs())


def resolve_spec_path(name_or_path: str | Path) -> Path:
    """A spec file path for a path or a shipped spec name."""
    path = shipped_path(name_or_path)
    if path.is_file():
        return path
    close = closest_shipped(str(name_or_path))
    hint = f"did you mean {', '.join(close)}?" if close else "list_specs() gives the shipped names"
    raise ArchspecError(f"{name_or_path!r} is neither a spec file nor a shipped spec; {hint}")


def create_model(
    name_or_path: str | Path,
    pretrained: str | Path | None = None,
    num_classes: int | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    features_only: bool | None = None,
    out_indices: int | Sequence[int] | None = None,
    device: str = "cpu",
    seed: int | None = 0,
    check_memory: bool = True,
    allow_nonfinite: bool = False,
    retain_memory: bool = False,
) -> Any:
    """Build a model from a shipped spec name or a spec file.

    Args:
        name_or_path: ``"spectformer-h-s"`` (see :func:`list_specs`) or a path to a YAML spec.
        pretrained: a checkpoint to load: archspec's own, or a reference implementation's state_dict
            (timm, the official GFNet or SpectFormer-H), saved by ``torch.save`` or as safetensors.
        num_classes: replace the spec's class count; with ``pretrained``, every tensor but the
            classifier's is loaded, and the classifier starts from its initialisation. ``0`` leaves the
            classifier out (``reset_classifier(0)``): the model returns its pooled features.
        overrides: ``{"stages.2.depth": 8}`` or ``["stages.2.depth=8"]``, as ``--set`` on the command line.
        features_only: return a :class:`~archspec.nn.FeatureExtractor` giving per-stage feature maps;
            None follows the spec (a spec with ``features:`` is a backbone).
        out_indices: the stages (0-based; negative counts from the end, an int n takes the last n) whose
            maps are returned; None takes the spec's, else all.
        device: where to allocate the weights.
        seed: seed for the initial weights (None leaves torch's RNG alone).
        check_memory: refuse (:class:`~archspec.budget.BudgetError`) a model whose weights and
            activations at batch 1 would not fit half of the memory available, before allocating it.
        allow_nonfinite: let ``pretrained`` hold NaN or infinite values, which are otherwise refused.
        retain_memory: True: on the CPU, keep freed memory in the process for reuse
            (:func:`archspec.accel.retain_freed_memory`: glibc's ``mallopt``, process-wide and
            irreversible). The default leaves the allocator alone.

    Returns:
        The ``nn.Module``; with ``features_only``, a :class:`~archspec.nn.FeatureExtractor` returning an
        ``OrderedDict`` of (B, C, H, W) maps, with ``feature_info`` and ``out_channels``.
    """
    from archspec import build, load_spec, plan
    from archspec.budget import check_budget
    from archspec.checkpoint import load_file

    items = list(overrides.items()) if isinstance(overrides, Mapping) else None
    sets = [f"{key}={json.dumps(value)}" for key, value in items] if items is not None else list(overrides or [])
    if num_classes:  # 0 (no classifier, as in timm) is applied after the build
        sets.append(f"num_classes={num_classes}")
    loaded = load_spec(resolve_spec_path(name_or_path), sets)
    planned = plan(loaded)
    if check_memory and device != "meta":
        check_budget(planned, remedy="pass check_memory=False")
    model = build(planned, device=device, seed=seed, retain_memory=retain_memory)
    if pretrained is not None:
        # A new class count keeps the checkpoint's everything but its classifier, which starts afresh.
        reinit = ("head", "aux_head") if num_classes is not None else ()
        load_file(model, pretrained, plan=planned, reinit=reinit, allow_nonfinite=allow_nonfinite)
    if num_classes == 0:
        cast("Backbone", model).reset_classifier(0)  # the pooled features come out
    declared = loaded.spec.features
    if not (features_only if features_only is not None else declared is not None):
        return model
    if out_indices is None:
        out_indices = declared.out_indices if declared is not None else tuple(range(len(planned.stages)))
    return backbone(model, planned, out_indices)


def backbone(model: Any, planned: Plan, out_indices: int | Sequence[int]) -> Any:
    """The body of a built classifier as a :class:`~archspec.nn.FeatureExtractor` returning the maps
    of the stages ``out_indices``; it shares the classifier's modules and weights (the head is left out)."""
    from archspec.builder import body_of
    from archspec.nn import FeatureExtractor

    count = len(planned.stages)
    body = body_of(
        planned,
        [getattr(model, f"patch_embed{i}") for i in range(1, count + 1)],
        [getattr(model, f"block{i}") for i in range(1, count + 1)],
        [getattr(model, f"norm{i}") for i in range(1, count + 1)],
    )
    return FeatureExtractor(body, out_indices, body.channels, body.reductions)


def build_declared(planned: Plan, **options: Any) -> Any:
    """The module a spec declares: its classifier, or its backbone when it has ``features:``.

    ``options`` are :func:`archspec.builder.build`'s (device, dtype, seed, retain_memory).
    """
    from archspec.builder import build

    model = build(planned, **options)
    features = planned.spec.features
    return model if features is None else backbone(model, planned, features.out_indices)


def declared_cost(planned: Plan) -> tuple[int, int]:
    """Parameters and FLOPs per sample of what :func:`build_declared` returns."""
    from archspec.summary import backbone as backbone_info

    info = backbone_info(planned)
    return (planned.params, planned.flops) if info is None else (info["params"], info["flops"])
