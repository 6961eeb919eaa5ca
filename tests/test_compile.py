"""torch.compile: one graph, no graph breaks, and no recompiles when only the batch size changes."""

from __future__ import annotations

import pytest
import torch
import torch._dynamo as dynamo
from conftest import SPECS, tiny

import archspec


@pytest.mark.parametrize("path", [p for p in SPECS if p.name in ("spectformer.yaml", "spectformer-h-s.yaml")], ids=str)
def test_no_graph_breaks(path):
    model = archspec.build(archspec.load_spec(path)).eval()
    with torch.no_grad():
        explanation = dynamo.explain(model)(torch.randn(1, 3, 224, 224))
    assert (explanation.graph_count, explanation.graph_break_count) == (1, 0)


def test_no_recompiles_across_batch_sizes():
    plan = archspec.plan(archspec.validate(tiny(head={"type": "class_attention", "heads": 2, "aux_head": True})))
    model = archspec.build(plan).eval()
    dynamo.reset()
    compiled = torch.compile(model, backend="eager", dynamic=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(torch.ones(2, *plan.input.dims)), model(torch.ones(2, *plan.input.dims)))
        with dynamo.config.patch(error_on_recompile=True):
            for batch in (3, 5, 8):
                x = torch.randn(batch, *plan.input.dims)
                torch.testing.assert_close(compiled(x), model(x))
