"""Generated from the registry: every component, in a tiny model, plans exactly what it builds."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from conftest import SHIPPED, tiny
from helpers import assert_flops_match, assert_params_match

import archspec
from archspec import registry
from archspec.nodes import LAYER_INPUT, Node, Plan, Shape, Site


def _set(spec: dict[str, Any], dotted: str, value: Any) -> None:
    *path, last = dotted.split(".")
    node: Any = spec
    for key in path:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[int(last) if isinstance(node, list) else last] = copy.deepcopy(value)


def _with_component(kind: str, name: str) -> dict[str, Any]:
    """The tiny spec with component ``name`` in every slot of its kind, at its defaults, plus the
    changes the component asks for (its ``example``) to make room for it."""
    cls = registry.get(kind, name)
    spec = tiny()
    if kind in ("stem", "head"):
        spec[kind] = {"type": name}
    elif kind == "downsample":
        spec["stages"][1]["downsample"] = {"type": name}
    for stage in spec["stages"]:
        if kind in ("mixer", "ffn"):
            stage[kind] = {"type": name}
        elif kind == "norm":
            stage["norm"] = {"type": name}
            stage["block"] = {"type": "prenorm", "norm": {"type": name}}
        elif kind == "act":
            stage["ffn"]["act"] = {"type": name}
        elif kind == "block":
            stage["block"] = {"type": name}
            for slot, used in (("mixer", cls.uses_mixer), ("ffn", cls.uses_ffn)):
                if not used:
                    stage.pop(slot, None)
    if kind == "stem":
        spec["input"]["size"] = 64  # room for the default conv stem's total stride of 8
    for dotted, value in cls.example.items():
        _set(spec, dotted, value)
    for stage in spec["stages"]:  # a stage whose block (as the example made it) reads no mixer or FFN names none
        block = registry.get("block", stage.get("block", {}).get("type", "prenorm")).model_validate(
            stage.get("block", {})
        )
        for slot, used in (("mixer", block.uses_mixer), ("ffn", block.uses_ffn)):
            if not used:
                stage.pop(slot, None)
    return spec


ALL = [(cls.kind, cls.type_name()) for cls in registry.components()]


def _found(plan: Plan, kind: str, name: str) -> list[Node]:
    """The nodes of component ``name``; for a part, which is planned as what it holds (the stage's mixer,
    a norm), the blocks whose flow names it."""
    if kind == "part":
        return [node for node in plan.walk() if name in {t for _, t in getattr(node.args, "parts", ())}]
    return [node for node in plan.walk() if (node.kind, node.component) == (kind, name)]


def test_registry_has_every_kind():
    assert {kind for kind, _ in ALL} == set(registry.KINDS)


@pytest.mark.parametrize(("kind", "name"), ALL, ids=[f"{k}-{n}" for k, n in ALL])
def test_component_plan_matches_module(kind, name):
    plan = archspec.plan(archspec.validate(_with_component(kind, name)))
    assert _found(plan, kind, name)
    model = archspec.build(plan)
    assert_params_match(plan, model)
    assert_flops_match(plan, model, batch=2)


def _plan(case: str) -> Plan:
    """A shipped spec by file name, or the tiny spec holding one component, by ``kind-name``."""
    for path in SHIPPED:
        if path.name == case:
            return archspec.plan(archspec.load_spec(path))
    kind, name = case.split("-", 1)
    return archspec.plan(archspec.validate(_with_component(kind, name)))


@pytest.mark.parametrize("case", [f"{k}-{n}" for k, n in ALL] + [p.name for p in SHIPPED])
def test_children_partition_their_node(case):
    """Generated from the registry and the shipped specs: a node's children add up to it exactly."""
    plan = _plan(case)
    parents = [node for node in plan.walk() if node.children]
    assert len(parents) > len(plan.stages)  # blocks, and components with their layers
    for node in parents:
        assert node.params == sum(child.params for child in node.children), node.module_paths
        assert node.flops == sum(child.flops for child in node.children), node.module_paths


@pytest.mark.parametrize(("kind", "name"), ALL, ids=[f"{k}-{n}" for k, n in ALL])
def test_component_plans_its_parts(kind, name):
    """Every component's node is made of parts (layers, norms, activations, or component nodes) with
    unique names, wired among themselves; a block's flow runs over its parts."""
    plan = archspec.plan(archspec.validate(_with_component(kind, name)))
    found = _found(plan, kind, name)
    assert found
    for node in found:
        names = [part.name for part in node.children]
        assert len(set(names)) == len(names) and all(names)
        assert all(set(part.after or ()) <= {LAYER_INPUT, *names} for part in node.children)
        steps = {step.name for step in node.flow}
        assert {step.child for step in node.flow if step.child} <= set(names)
        assert all(set(step.after or ()) <= {LAYER_INPUT, *steps} for step in node.flow)
        assert all(step.residual in {LAYER_INPUT, *steps} for step in node.flow if step.add)


def test_node_checks_its_layers():
    spec = registry.get("ffn", "mlp")(type="mlp")
    tokens, site = Shape(8, (4, 4), tokens=True), Site(("stages", 0, "ffn"), "block1.0.mlp")
    planned = spec.plan(tokens, site)
    layers, args = planned.children, vars(planned.args)
    assert spec.node(site, tokens, tokens, children=layers, **args).params == 2 * 8 * 32 + 32 + 8
    with pytest.raises(ValueError, match="ffn 'mlp' plans 1 params but its layers hold 552"):
        spec.node(site, tokens, tokens, 1, children=layers, **args)
    with pytest.raises(ValueError, match="FLOPs"):
        spec.node(site, tokens, tokens, 552, 0, children=layers, **args)
    with pytest.raises(TypeError, match="needs its params and flops"):
        spec.node(site, tokens, tokens, **args)
    message = (
        "ffn 'mlp' plans the build arguments ['bias', 'dim', 'drop', 'hidden', 'hiden'], but its build_args "
        "record MlpFfnArgs declares ['bias', 'dim', 'drop', 'hidden']"
    )
    with pytest.raises(TypeError, match=re.escape(message)):  # the record is declared
        spec.node(site, tokens, tokens, children=layers, **{**args, "hiden": 32})


def test_every_component_builds_from_its_declared_record():
    """Generated from the registry: each node's args are its component's frozen build record."""
    import dataclasses

    for kind, name in ALL:
        plan = archspec.plan(archspec.validate(_with_component(kind, name)))
        for node in plan.walk():
            if node.spec is not None:
                record = type(node.spec).build_args
                assert type(node.args) is record and dataclasses.is_dataclass(record), (kind, name, node.component)
                with pytest.raises(dataclasses.FrozenInstanceError):
                    node.args.dim = 1


@pytest.mark.parametrize(("kind", "name"), ALL, ids=[f"{k}-{n}" for k, n in ALL])
def test_component_trains(kind, name):
    """One backward pass reaches every parameter (a dead weight would break DDP)."""
    plan = archspec.plan(archspec.validate(_with_component(kind, name)))
    model = archspec.build(plan).train()
    out = model(torch.randn(2, *plan.input.dims))
    loss = sum(o.float().square().mean() for o in (out if isinstance(out, tuple) else (out,)))
    loss.backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
    # Talking heads' bias before the softmax shifts every logit of a head alike, which the softmax
    # cancels: its gradient is zero up to rounding, and exactly zero on some CPUs.
    invariant = [n for n, _ in model.named_parameters() if n.endswith("proj_l.bias")]
    dead = [n for n, p in model.named_parameters() if n not in invariant and not p.grad.abs().sum() > 0]
    assert dead == []


def test_class_attention_with_aux_head():
    spec = tiny(head={"type": "class_attention", "blocks": 2, "heads": 4, "aux_head": True})
    plan = archspec.plan(archspec.validate(spec))
    model = archspec.build(plan)
    assert plan.head.module_paths == ("post_network", "head", "aux_head")
    assert_params_match(plan, model)
    out = assert_flops_match(plan, model, batch=2)
    # In eval and in training the output is head(cls) + 0.5 · max over tokens of aux_head(tokens).
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        tokens = model.forward_features(x)
        cls_tokens = torch.cat([tokens.mean(1, keepdim=True), tokens], 1)
        for block in model.post_network:
            cls_tokens, _ = block(cls_tokens, (1, cls_tokens.shape[1] - 1))
        normed = model.final_norm(cls_tokens)
        expected = model.head(normed[:, 0]) + 0.5 * model.aux_head(normed[:, 1:]).max(1).values
        torch.testing.assert_close(model(x), expected)
        assert isinstance(model.train()(x), torch.Tensor)  # one tensor in training too
        model.eval()
        logits, aux = model.forward_aux(tokens)
        torch.testing.assert_close(logits, model.head(normed[:, 0]))
        torch.testing.assert_close(aux, model.aux_head(normed[:, 1:]))
    assert out.shape == (2, 5)
    assert logits.shape == (2, 5) and aux.shape == (2, 16, 5)
    # Training on the single output reaches every parameter, the aux head's included.
    model.train()(x).logsumexp(-1).mean().backward()
    assert [name for name, p in model.named_parameters() if p.grad is None] == []
    # TokenLabelling returns both logits for a dense loss.
    trainer = archspec.nn.TokenLabelling(model).eval()
    pair = trainer(x)
    torch.testing.assert_close(pair[0].detach(), logits)
    labels = torch.tensor([1, 3])
    loss = trainer.loss(*pair, labels)
    want = F.cross_entropy(pair[0], labels) + 0.5 * F.cross_entropy(pair[1].flatten(0, 1), labels.repeat_interleave(16))
    torch.testing.assert_close(loss, want)


def test_build_refuses_a_component_whose_module_drifts_from_its_plan():
    """The plan ↔ module check runs inside archspec.build, naming the node."""
    from typing import Literal

    from archspec.errors import CheckError
    from archspec.specbase import MixerSpec

    class DriftingMixer(MixerSpec):
        type: Literal["drifting"] = "drifting"

        def plan(self, tokens: Shape, site: Site) -> Node:
            return self.node(site, tokens, tokens, 5, 0)  # claims 5 parameters

        @staticmethod
        def build(node: Node) -> torch.nn.Module:
            from archspec.nn.identity_mixer import IdentityMixer

            return IdentityMixer()  # holds none

    registry.register(DriftingMixer)
    try:
        spec = tiny()
        spec["stages"][0]["mixer"] = {"type": "drifting"}
        with pytest.raises(CheckError) as info:
            archspec.build(archspec.plan(archspec.validate(spec)))
        assert str(info.value) == "mixer 'drifting' at block1.0.m plans 5 parameters but its module holds 0"
    finally:
        del registry._COMPONENTS["mixer"]["drifting"]


def test_class_attention_initialises_its_linears_as_the_official_head_does():
    """Truncated normal, std 0.02, zero biases (SpectFormer-H's post-network), for the mixer and the FFN."""
    plan = archspec.plan(archspec.validate(_with_component("block", "class")))
    block = archspec.build(plan, seed=0).get_submodule("block1.0")  # the stage's one class block
    for name in ("attn.kv", "attn.q", "attn.proj", "mlp.fc1", "mlp.fc2"):
        linear = block.get_submodule(name)
        assert 0.01 < float(linear.weight.detach().std()) < 0.03, name
        assert not linear.bias.detach().any(), name
