"""Every block's module runs its planned flow: generated from the registry's blocks and parts and from
every shipped spec, each distinct block is built, run with hooks on its parts, and replayed against its plan."""

from __future__ import annotations

import pytest
import torch
from conftest import SHIPPED
from test_components import ALL, _plan, _with_component

import archspec
from archspec import registry
from archspec.flowcheck import FlowMismatch, check_flow
from archspec.nodes import Node, Plan

CASES = [f"{kind}-{name}" for kind, name in ALL if kind in ("block", "part")] + [path.name for path in SHIPPED]


def _distinct_blocks(plan: Plan) -> list[Node]:
    """One block of each form, parts and input shape, in the stages and the head (a stage's blocks differ only
    in their drop-path rate)."""
    seen: dict[tuple[object, ...], Node] = {}
    head_blocks = [child for child in plan.head.children if child.kind == "block"]  # the class-attention head's
    for blocks in (*(stage.blocks for stage in plan.stages), head_blocks):
        for block in blocks:
            key = (
                block.component,
                block.flow,
                block.in_shape,
                tuple(repr(c.args) for c in block.children),
            )
            seen.setdefault(key, block)
    return list(seen.values())


def _run(block: Node, module: torch.nn.Module) -> None:
    torch.manual_seed(0)
    x = torch.randn(1, *block.in_shape.dims)
    assert block.in_shape.grid is not None
    check_flow(block, module.eval(), x, block.in_shape.grid)


@pytest.mark.parametrize("case", CASES)
def test_every_block_runs_its_planned_flow(case):
    blocks = _distinct_blocks(_plan(case))
    assert blocks
    for block in blocks:
        torch.manual_seed(0)
        _run(block, registry.build_node(block))


def _tiny_block(flow: list[list[object]]) -> Node:
    spec = _with_component("block", "flow")
    spec["stages"][0]["block"] = {
        "type": "flow",
        "parts": {"m": "mixer", "norm1": "norm", "norm2": "norm", "mlp": "ffn"},
        "flow": flow,
    }
    return archspec.plan(archspec.validate(spec)).stages[0].blocks[0]


PRENORM = [["norm1", "m", "drop_path", "add"], ["norm2", "mlp", "drop_path", "add"]]
POSTNORM = [["m", "drop_path", "add", "norm1"], ["mlp", "drop_path", "add", "norm2"]]


def test_a_module_that_runs_another_flow_than_its_plan_fails():
    """A block planned pre-norm whose module runs post-norm (the same parts, wired otherwise) is caught."""
    planned, other = _tiny_block(PRENORM), _tiny_block(POSTNORM)
    torch.manual_seed(0)
    _run(planned, registry.build_node(planned))  # the honest module passes
    with pytest.raises(FlowMismatch, match=r"step 'norm1' plans a call of 'norm1', but the module called 'm'"):
        _run(planned, registry.build_node(other))


def test_a_module_that_reads_the_wrong_operand_fails():
    """The same call order, but the FFN branch reads the block's input instead of the first sum."""
    planned = _tiny_block(PRENORM)
    wrong = _tiny_block([["norm1", "m", "drop_path", "add"], ["norm2", "mlp", "drop_path", "add"]])
    module = registry.build_node(wrong)
    from archspec.nn.flow_block import Op

    program = list(module.program)
    norm2 = next(i for i, op in enumerate(program) if op.part == "norm2")
    program[norm2] = Op(program[norm2].code, (0,), "norm2")  # read x, not x + m(norm1(x))
    module.program = tuple(program)
    with pytest.raises(FlowMismatch, match=r"step 'norm2': 'norm2' was called on another tensor than the plan's"):
        _run(planned, module)


FLOW_ERRORS = [
    ("{m: mixer, mlp: ffn}", "[[m, add], [mpl, add]]",
     "7:25: stages[0].block.flow[1][0]: no part named 'mpl'; did you mean 'mlp'? (parts: m, mlp) [AS301]"),
    ("{m: mixer, mlp: ffn}", "[[m, drop_path], [mlp, add]]",
     "7:18: stages[0].block.flow[0][1]: drop_path applies to a branch about to be added: add 'add' [AS301]"),
    ("{m: mixer, mlp: ffn, extra: norm}", "[[m, add], [mlp, add]]",
     "7:7: stages[0].block.flow: part 'extra' is declared but no line uses it [AS301]"),
    ("{m: mixer, mlp: ffn}", "[[m, add], [mlp, add], [mlp, add]]",
     "7:37: stages[0].block.flow[2][0]: part 'mlp' is used twice: only a part without parameters can be "
     "(reading the same shape); declare a second part [AS301]"),
    ("{m: mixer, mlp: ffn, _x: norm}", "[[m, add], [mlp, add]]",
     "6:7: stages[0].block.parts: part name '_x' must be a word of letters, digits and '_' starting with a letter, "
     "other than add, class_token, concat, form, forward, program, rejoin, sum, "
     "training [AS204]"),
    ("{m: mixer, mlp: ffn}", "[[m, {add: m, sum: [[m], [m]]}], [mlp, add]]",
     "7:18: stages[0].block.flow[0][1]: a step written as a mapping has exactly one of add, sum, concat (got 2) "
     "[AS204]"),
    ("{m: mixer, mlp: ffn, p: {type: linear, out: 16}}", "[[m, p, add], [mlp, add]]",
     "7:21: stages[0].block.flow[0][2]: add needs equal shapes, got 3136×16 and 3136×64 [AS301]"),
    ("{m: mixer, mlp: ffn}", "[[m, 3], [mlp, add]]",
     "7:18: stages[0].block.flow[0][1]: a flow step is a part's name, 'add', 'drop_path', or a mapping with one of "
     "add, sum, concat (got 3) [AS204]"),
    ("{m: mixer, mlp: ffn}", "[[{sum: [[m], [add]]}], [mlp, add]]",
     "7:28: stages[0].block.flow[0][0].sum[1][0]: an 'add' inside sum or concat has no running x to add to [AS301]"),
    ("{m: mixer, mlp: ffn, drop_path: norm}", "[[m, add], [mlp, add]]",
     "6:7: stages[0].block.parts: the name 'drop_path' is kept for the part of type 'drop_path', and only for it "
     "[AS204]"),
]  # fmt: skip


@pytest.mark.parametrize(("parts", "flow", "message"), FLOW_ERRORS)
def test_a_bad_flow_is_pointed_at(tmp_path, parts, flow, message):
    spec = tmp_path / "s.yaml"
    spec.write_text(f"extends: spectformer\nstages:\n  0:\n    block:\n      type: flow\n      parts: {parts}\n"
                    f"      flow: {flow}\n")  # fmt: skip
    with pytest.raises(archspec.SpecError) as caught:
        archspec.plan(archspec.load_spec(spec))
    text, code = message.rsplit(" [", 1)
    assert str(caught.value).splitlines() == [f"{spec}:{text}"]
    assert [problem.code for problem in caught.value.problems] == [code.rstrip("]")]


def _tiny_plan(block: dict[str, object]) -> archspec.nodes.Plan:
    spec = _with_component("block", "flow")
    for stage in spec["stages"]:
        stage["block"], stage["mixer"] = block, {"type": "dwconv"}
    return archspec.plan(archspec.validate(spec))


def test_a_preset_is_a_flow_and_takes_overrides():
    gfnet, as_flow = _tiny_plan({"type": "gfnet"}), _tiny_plan({"type": "flow", "preset": "gfnet"})
    assert as_flow.params == gfnet.params == 6_325
    assert [block.flow for block in as_flow.stages[0].blocks] == [block.flow for block in gfnet.stages[0].blocks]
    # A part given by name replaces the preset's: GFNet's second norm as an RMSNorm, without its bias.
    changed = _tiny_plan({"type": "flow", "preset": "gfnet", "parts": {"norm2": {"type": "norm", "norm": "rmsnorm"}}})
    assert changed.params == 6_325 - 8 - 2 * 16  # each block loses its norm2 bias: 1 block of 8, 2 of 16
    assert changed.stages[0].blocks[0].child("norm2").component == "rmsnorm"
    # Parts given join the preset's, and a flow given replaces its lines: ConvNeXt with its layer scale.
    scaled = {"type": "flow", "preset": "convnext", "parts": {"ls": {"type": "scale", "init": 1e-6}},
              "flow": [["m", "norm", "mlp", "ls", "drop_path", "add"]]}  # fmt: skip
    assert _tiny_plan(scaled).params == _tiny_plan({"type": "convnext", "layer_scale": 1e-6}).params


def test_a_preset_must_be_a_form():
    with pytest.raises(archspec.SpecError) as caught:
        _tiny_plan({"type": "flow", "preset": "gfnetx"})
    message = "preset 'gfnetx' is not a block form; did you mean 'gfnet'? (forms: basic, bottleneck, class, convnext, "
    assert str(caught.value).splitlines()[0].startswith(f"<spec>: stages[0].block.preset: {message}")
