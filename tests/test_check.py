"""archspec.check: the checks of ``archspec build`` as a library function, with the CLI's messages."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from conftest import ROOT, tiny
from torch import nn
from torch.nn import functional

import archspec
from archspec.checks import declared_shapes


def _built(**changes):
    plan = archspec.plan(archspec.validate(tiny(**changes)))
    return archspec.build(plan, seed=0), plan


def test_report_figures_of_the_tiny_classifier():
    model, plan = _built()
    report = archspec.check(model, plan, batch=2, grad=True)
    assert isinstance(report, archspec.CheckReport)
    assert (report.name, report.params, report.declared_params, report.backbone) == ("Tiny", 7141, 7141, False)
    assert report.input_shape == (2, 3, 32, 32)
    assert report.output_shapes == [(2, 5)]
    assert (report.device, report.dtype) == ("cpu", "float32")
    assert report.grad_tensors == 51 == len(list(model.parameters()))
    assert report.forward_s > 0 and report.backward_s is not None and report.backward_s > 0
    assert report.module is model and not model.training
    assert all(p.grad is None for p in model.parameters())  # the gradient check leaves none behind


def test_report_without_the_gradient_check():
    model, plan = _built()
    report = archspec.check(model, plan)
    assert report.input_shape == (1, 3, 32, 32) and report.output_shapes == [(1, 5)]
    assert report.grad_tensors is None and report.backward_s is None


def test_report_of_a_backbone_runs_its_feature_maps():
    model, plan = _built(features={"out_indices": [0, 1]})
    report = archspec.check(model, plan, batch=2, dtype="float32", device="cpu")
    assert (report.params, report.declared_params, report.backbone) == (7141, 7141 - plan.head.params, True)
    assert plan.head.params == 85
    assert report.output_shapes == [(2, 8, 8, 8), (2, 16, 4, 4)]
    assert declared_shapes(plan) == [(8, 8, 8), (16, 4, 4)]
    assert isinstance(report.module, archspec.nn.FeatureExtractor)


def test_a_wrong_parameter_count_is_refused():
    model, plan = _built()
    model.extra = nn.Parameter(torch.zeros(3))
    with pytest.raises(archspec.CheckError) as info:
        archspec.check(model, plan)
    assert str(info.value) == "the built model has 7,144 parameters but the plan says 7,141"
    assert info.value.code == "AS701"


def test_a_wrong_output_shape_is_refused():
    model, plan = _built()
    model.register_forward_hook(lambda module, inputs, output: output[:, :3])
    with pytest.raises(archspec.CheckError) as info:
        archspec.check(model, plan, batch=2)
    assert str(info.value) == "the model returned shapes [(2, 3)] but the plan says [(2, 5)]"
    assert info.value.code == "AS701"


def test_a_parameter_without_gradient_is_refused():
    """The head's bias is left out of its forward: the count is the plan's, but the bias gets no gradient."""
    model, plan = _built()
    head = model.head
    head.forward = lambda x: functional.linear(x, head.weight)
    archspec.check(model, plan)  # without the gradient check, nothing is wrong
    with pytest.raises(archspec.CheckError) as info:
        archspec.check(model, plan, grad=True)
    assert str(info.value) == "1 parameters received no gradient (they would break DDP):\n  head.bias"
    assert info.value.code == "AS702"
    assert not model.training and head.weight.grad is None


def test_check_is_reachable_without_importing_torch():
    """archspec.check is a plain function of the package; torch loads when it runs, not before."""
    code = "import sys, archspec; archspec.check; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "False"
