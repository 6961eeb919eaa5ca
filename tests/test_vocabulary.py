"""Options that change what a model computes without changing its parameters: dropout, position
embeddings at other input sizes, class tokens."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny

import archspec

VIT = {
    "stem": {"type": "patch", "patch": 4, "norm": "none", "cls_token": True, "pos_embed": True},
    "stages": [{"dim": 8, "depth": 2, "mixer": {"type": "attention", "heads": 2, "qkv": "fused"}}],
    "head": {"type": "token"},
    "drop_path_rate": 0.0,
}


def _model(**changes):
    return archspec.build(archspec.validate(tiny(**changes)), seed=0)


def test_dropout_rates_act_in_training_only():
    rates = {
        "drop_path_rate": 0.0,
        "stages": [
            {"dim": 8, "depth": 1, "mixer": {"type": "spectral"}, "ffn": {"type": "mlp", "drop": 0.5}},
            {"dim": 16, "depth": 1, "mixer": {"type": "attention", "heads": 2, "attn_drop": 0.5, "proj_drop": 0.5}},
        ],
        "head": {"type": "pool", "drop": 0.5},
    }
    plain = {**rates, "stages": [{k: v for k, v in s.items() if k != "ffn"} for s in rates["stages"]]}
    plain["stages"][1]["mixer"] = {"type": "attention", "heads": 2}
    plain["head"] = {"type": "pool"}
    dropped, undropped = _model(**rates), _model(**plain)
    assert sum(p.numel() for p in dropped.parameters()) == sum(p.numel() for p in undropped.parameters())
    undropped.load_state_dict(dropped.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(dropped.eval()(x), undropped.eval()(x))
        dropped.train()
        assert not torch.equal(dropped(x), dropped(x))


def test_class_token_and_position_embeddings():
    model = _model(**VIT)
    plan = archspec.plan(archspec.validate(tiny(**VIT)))
    assert plan.stages[0].blocks[0].in_shape.dims == (65, 8)  # the class token in front of 8×8 patches
    assert tuple(model.patch_embed1.pos_embed.shape) == (1, 65, 8)
    assert tuple(model.patch_embed1.cls_token.shape) == (1, 1, 8)
    assert {"patch_embed1.pos_embed", "patch_embed1.cls_token"} <= model.no_weight_decay()


def test_position_embeddings_resize_for_another_input_size():
    model = _model(**VIT).eval()
    with torch.no_grad():
        assert tuple(model(torch.randn(1, 3, 48, 40)).shape) == (1, 5)
        positions = model.patch_embed1._positions((8, 8))
        assert positions is model.patch_embed1.pos_embed  # the built size uses the embeddings as they are
        resized = model.patch_embed1._positions((12, 10))
        assert tuple(resized.shape) == (1, 1 + 120, 8)
        torch.testing.assert_close(resized[:, 0], model.patch_embed1.pos_embed[:, 0])  # the class slot is kept
    strict = _model(**{**VIT, "stem": {**VIT["stem"], "resize": "strict"}}).eval()
    with pytest.raises(ValueError, match=r"built for a 8×8 token grid, got 12×10 \(resize='strict'\)"):
        strict(torch.randn(1, 3, 48, 40))


def test_a_token_head_needs_a_class_token():
    with pytest.raises(archspec.SpecError) as info:
        archspec.plan(archspec.validate(tiny(**{**VIT, "stem": {"type": "patch", "patch": 4}})))
    assert [p.message for p in info.value.problems] == [
        "the token head reads a class token; give the stem 'cls_token: true'"
    ]
