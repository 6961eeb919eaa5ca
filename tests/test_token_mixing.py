"""The token-axis mixers (token_mlp, token_linear): their weights fit one token count, which the plan checks."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny

import archspec
from archspec.errors import SpecError


def _problems(*overrides: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        archspec.plan(archspec.load_spec("mixer_b16_224", overrides))
    return [line.split(": ", 1)[1] for line in info.value.lines()]


def test_another_input_size_is_a_plan_error_at_the_stated_count():
    assert _problems("input.size=256") == [
        "stages[0].mixer.tokens: a token MLP made for 196 tokens gets 256 (the 16×16 grid): its weights act along "
        "the token axis, so the input size must give the count the spec states"
    ]
    with pytest.raises(SpecError, match=r"a token Linear made for 196 tokens gets 144 \(the 12×12 grid\)"):
        archspec.plan(archspec.load_spec("resmlp_12_224", ["input.size=192"]))


def test_without_a_stated_count_the_grid_gives_it():
    plan = archspec.plan(archspec.load_spec("mixer_b16_224", ["input.size=256", "stages.0.mixer.tokens=null"]))
    mixer = plan.stages[0].blocks[0].part_of("mixer")
    assert mixer is not None
    assert (mixer.args.tokens, mixer.args.hidden) == (256, 384)


@pytest.mark.parametrize(
    ("mixer", "hidden"),
    [({"type": "token_mlp"}, 4), ({"type": "token_mlp", "ratio": 2.0}, 16), ({"type": "token_mlp", "hidden": 5}, 5)],
)
def test_the_hidden_width_is_given_or_the_dim_times_ratio(mixer, hidden):
    spec = tiny(stages=[{"dim": 8, "depth": 1, "mixer": mixer, "ffn": {"type": "mlp"}}])
    model = archspec.build(archspec.plan(archspec.validate(spec)))
    assert model.block1[0].m.fc1.weight.shape == (hidden, 64)  # 8×8 tokens in, the hidden width out


def test_ratio_and_hidden_together_are_refused():
    spec = tiny(stages=[{"dim": 8, "depth": 1, "mixer": {"type": "token_mlp", "ratio": 1.0, "hidden": 8}}])
    with pytest.raises(SpecError, match="give 'ratio' or 'hidden', not both"):
        archspec.validate(spec)


@pytest.mark.parametrize("mixer", ["token_mlp", "token_linear"])
def test_the_mixer_mixes_tokens_the_same_way_for_every_channel(mixer):
    spec = tiny(stages=[{"dim": 8, "depth": 1, "mixer": {"type": mixer}, "ffn": {"type": "mlp"}}])
    m = archspec.build(archspec.plan(archspec.validate(spec))).block1[0].m.eval()
    x = torch.randn(2, 64, 8)
    with torch.no_grad():
        out = m(x, (8, 8))
        # Each channel sent through alone (copied to every channel) gives its own output: channels never mix.
        alone = torch.cat([m(x[..., c : c + 1].expand(-1, -1, 8).contiguous(), (8, 8))[..., :1] for c in range(8)], -1)
    torch.testing.assert_close(out, alone)


@pytest.mark.parametrize("name", ["mixer_b16_224", "resmlp_12_224"])
def test_a_built_model_refuses_another_token_count(name):
    model = archspec.create_model(name, device="meta")
    mixer = model.block1[0].m
    with pytest.raises(ValueError, match=r"was built for 196 tokens, got 256: its weights act along the token axis"):
        mixer(torch.empty(1, 256, model.num_features, device="meta"), (16, 16))
