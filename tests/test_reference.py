"""Built models compute the same function as a plain hand-written SpectFormer (benchmarks/reference.py)."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from conftest import ROOT

import archspec

_spec = importlib.util.spec_from_file_location("reference", ROOT / "benchmarks" / "reference.py")
assert _spec is not None and _spec.loader is not None
reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)

CASES = {
    "spectformer.yaml": reference.documented_spectformer,
    "spectformer-h-s.yaml": reference.spectformer_h_s,
}


@pytest.mark.parametrize("name", CASES)
def test_same_function_as_the_plain_implementation(name):
    # At 64×64 the comparison is exact all the same and takes a fraction of the time of 224×224.
    model = archspec.build(archspec.load_spec(ROOT / "specs" / name, ["input.size=64"]))
    plain = CASES[name](image=64)
    plain.load_state_dict(reference.from_archspec(model.state_dict()), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), plain.eval()(x), atol=1e-5, rtol=1e-5)
    # Training mode (drop-path off for comparability): the same outputs and the same gradients.
    for module in model.modules():
        if type(module).__name__ == "DropPath":
            module.p = 0.0
    ours, theirs = model.train()(x), plain.train()(x)
    if isinstance(theirs, tuple):  # the official head returns (class logits, token logits) in training
        theirs = theirs[0] + 0.5 * theirs[1].max(dim=1).values  # archspec returns this, as in evaluation
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    ours.square().mean().backward()
    theirs.square().mean().backward()
    grads = reference.from_archspec({k: p.grad for k, p in model.named_parameters()})
    for key, param in plain.named_parameters():
        torch.testing.assert_close(param.grad, grads[key], atol=1e-5, rtol=1e-4, msg=key)
