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
from archspec.plan import Node, Plan

CASES = [f"{kind}-{name}" for kind, name in ALL if kind in ("block", "part")] + [path.name for path in SHIPPED]


def _distinct_blocks(plan: Plan) -> list[Node]:
    """One block of each form, parts and input shape (a stage's blocks differ only in their drop-path rate)."""
    seen: dict[tuple[object, ...], Node] = {}
    for stage in plan.stages:
        for block in stage.blocks:
            key = (
                block.component,
                block.flow,
                block.in_shape,
                tuple(c.args.items().__repr__() for c in block.children),
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
