"""Weight decay from one source, over every shipped spec, and the classifier a model can be reset to.

``model.no_weight_decay()`` names every parameter trained without weight decay; ``archspec.optim``
splits the optimiser's groups by it, as timm's optimizer factory does with the same list.
"""

from __future__ import annotations

import pytest
import torch
from conftest import SHIPPED
from torch import nn

import archspec
from archspec.nn.afno import AFNOMixer
from archspec.nn.same_pad import SameConv2d
from archspec.optim import exempt_from_weight_decay, parameter_groups

WEIGHTS = (nn.Conv1d, nn.Conv2d, nn.Linear, SameConv2d)
"""Modules whose ``weight`` is a kernel or a matrix: trained with weight decay."""
EXEMPT_LEAVES = {"complex_weight", "pos_embed", "cls_token", "dist_token", "table", "alpha", "beta", "b1", "b2"}
"""Parameter names (the last part) that are never decayed, whatever their rank."""


def _meta(path):
    """A shipped spec built on the meta device: shapes and names, no values, in milliseconds."""
    return archspec.build(archspec.plan(archspec.load_spec(path)), device="meta")


def _timm_exempt(name: str, parameter: nn.Parameter, no_weight_decay_list: set[str]) -> bool:
    """timm's ``param_groups_weight_decay``: 1-D, ``*.bias`` or in the model's ``no_weight_decay()``."""
    return parameter.ndim <= 1 or name.endswith(".bias") or name in no_weight_decay_list


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_weight_decay_names_every_exempt_parameter(path):
    model = _meta(path)
    exempt = model.no_weight_decay()
    modules = dict(model.named_modules())
    parameters = dict(model.named_parameters())
    assert exempt <= set(parameters), f"not parameter names: {sorted(exempt - set(parameters))[:5]}"
    for name, parameter in parameters.items():
        owner, _, leaf = name.rpartition(".")
        decayed = (isinstance(modules[owner], WEIGHTS) and leaf == "weight") or (
            isinstance(modules[owner], AFNOMixer) and leaf in ("w1", "w2")
        )
        if decayed:
            assert name not in exempt, f"{name} {tuple(parameter.shape)} is a kernel or matrix"
            assert parameter.ndim >= 2
        else:  # every other parameter: biases, norms, scales, filters, embeddings, tokens, tables
            assert name in exempt, f"{name} {tuple(parameter.shape)} ({type(modules[owner]).__name__}) is decayed"
        if parameter.ndim <= 1 or leaf == "bias" or leaf in EXEMPT_LEAVES:
            assert name in exempt


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_parameter_groups_split_as_timm_does(path):
    model = _meta(path)
    exempt = model.no_weight_decay()
    decay, free = parameter_groups(model, 0.05)
    assert (decay["weight_decay"], free["weight_decay"]) == (0.05, 0.0)
    named = list(model.named_parameters())
    timm_decay = [id(p) for n, p in named if not _timm_exempt(n, p, exempt)]
    assert [id(p) for p in decay["params"]] == timm_decay
    assert [id(p) for p in free["params"]] == [id(p) for n, p in named if _timm_exempt(n, p, exempt)]
    # The model's list alone decides: timm's shape rule exempts nothing it leaves out.
    assert [id(p) for n, p in named if n not in exempt] == timm_decay
    assert len(decay["params"]) + len(free["params"]) == len(named)


def test_the_spectral_filters_and_embeddings_train_without_decay():
    model = _meta(next(p for p in SHIPPED if p.stem == "gfnet-ti"))
    decay, free = parameter_groups(model, 0.05)
    free_names = {n for n, p in model.named_parameters() if any(p is q for q in free["params"])}
    assert "patch_embed1.pos_embed" in free_names
    assert {n for n in free_names if n.endswith("complex_weight")} == {
        n for n, _ in model.named_parameters() if n.endswith("complex_weight")
    }
    assert all(p.ndim >= 2 for p in decay["params"])


def test_frozen_parameters_are_in_neither_group():
    model = _meta(next(p for p in SHIPPED if p.stem == "deit_tiny_patch16_224"))
    model.patch_embed1.requires_grad_(False)
    decay, free = parameter_groups(model, 0.1)
    grouped = {id(p) for p in decay["params"] + free["params"]}
    assert grouped == {id(p) for p in model.parameters() if p.requires_grad}
    assert not any(id(p) in grouped for p in model.patch_embed1.parameters())


def test_a_module_without_no_weight_decay_falls_back_to_the_shape_rule_and_its_parts():
    plain = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Conv2d(2, 2, 3))
    decay, free = parameter_groups(plain, 0.1)
    assert [tuple(p.shape) for p in decay["params"]] == [(4, 4), (2, 2, 3, 3)]
    assert [tuple(p.shape) for p in free["params"]] == [(4,), (4,), (4,), (2,)]
    # An archspec model inside a wrapper keeps its own exemptions, under the wrapper's names.
    model = _meta(next(p for p in SHIPPED if p.stem == "gfnet-ti"))
    wrapper = nn.ModuleDict({"net": model})
    assert exempt_from_weight_decay(wrapper) == {f"net.{name}" for name in model.no_weight_decay()}


def test_a_model_may_name_patterns_as_newer_timm_models_do():
    class Patterned(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList(nn.Linear(2, 2) for _ in range(2))
            self.pos = nn.Parameter(torch.zeros(1, 3, 2))

        def no_weight_decay(self) -> set[str]:
            return {"blocks.*.weight", "pos"}

    model = Patterned()
    decay, free = parameter_groups(model, 0.1)
    assert decay["params"] == [] and len(free["params"]) == 5


def test_token_labelling_and_feature_extractors_name_their_exempt_parameters():
    from archspec.nn import TokenLabelling

    model = archspec.create_model("spectformer-h-s", overrides=["input.size=64"])
    wrapped = TokenLabelling(model)
    assert wrapped.no_weight_decay() == {f"model.{name}" for name in model.no_weight_decay()}
    features = archspec.create_model("gfnet-ti", features_only=True, overrides=["input.size=64"])
    exempt = features.no_weight_decay()
    names = {n for n, _ in features.named_parameters()}
    assert exempt <= names and any(n.endswith("complex_weight") for n in exempt)
    assert any(n.endswith("pos_embed") for n in exempt)


def test_timms_optimizer_factory_gives_the_same_split():
    optim = pytest.importorskip("timm.optim")
    model = archspec.create_model("gfnet-ti", overrides=["input.size=64"])
    optimizer = optim.create_optimizer_v2(model, "adamw", weight_decay=0.05)
    theirs = {g["weight_decay"]: {id(p) for p in g["params"]} for g in optimizer.param_groups}
    ours = {g["weight_decay"]: {id(p) for p in g["params"]} for g in parameter_groups(model, 0.05)}
    assert theirs == ours


# --- reset_classifier ---------------------------------------------------------------------------

KINDS = {
    "convnext_atto": "PoolModel",
    "caformer_s18": "PoolModel",  # with an MlpHead
    "deit_tiny_patch16_224": "TokenModel",
    "spectformer-h-s": "ClassAttentionModel",
    "cait_xxs24_224": "ClassAttentionModel",  # with a learned class token
}


@pytest.mark.parametrize("name", KINDS)
@pytest.mark.parametrize("value", [-1, -1000, 2.5, 2.0, True, False, "3", None])
def test_reset_classifier_refuses_a_count_that_is_not_a_whole_number_from_0(name, value):
    model = _meta(next(p for p in SHIPPED if p.stem == name))
    assert type(model).__name__ == KINDS[name]
    before = model.get_classifier()
    with pytest.raises(ValueError) as info:
        model.reset_classifier(value)
    assert str(info.value) == f"num_classes must be a whole number from 0 (0 removes the classifier), got {value!r}"
    assert model.get_classifier() is before


@pytest.mark.parametrize("name", KINDS)
def test_reset_classifier_takes_0_and_integer_types(name):
    model = _meta(next(p for p in SHIPPED if p.stem == name))
    model.reset_classifier(torch.tensor(7))
    assert model.num_classes == 7 and type(model.get_classifier().out_features) is int
    model.reset_classifier(0)
    assert model.num_classes == 0
