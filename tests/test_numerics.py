"""Gradients reach every weight, builds are deterministic, and the numerics hold at the edges."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, SPECS

import archspec
from archspec.cli import main
from archspec.nn import Attention, ClassAttention, SpectralGatingNetwork


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_every_shipped_spec_has_no_dead_weights(path, capsys):
    assert main(["build", str(path), "--no-tree", "--check-grad"]) == 0
    tensors = len(list(archspec.build(archspec.load_spec(path)).parameters()))
    assert f"ok: every parameter received a gradient ({tensors} tensors)" in capsys.readouterr().err


def test_dead_weights_are_reported(capsys, monkeypatch):
    from archspec.nn import heads

    # A head that forgets the final norm leaves norm4's weight and bias without gradient.
    monkeypatch.setattr(heads.PoolModel, "forward_head", lambda self, x: self.head(x.mean(dim=1)))
    args = ["build", "specs/spectformer.yaml", "--no-tree", "--check-grad", "--set", "head={type: pool}"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert (
        "error: 2 parameters received no gradient (they would break DDP):\n  norm4.weight\n  norm4.bias [AS702]" in err
    )


DIGEST = """
import hashlib, sys, torch, archspec
model = archspec.build(archspec.load_spec(sys.argv[1]), seed=7).eval()
torch.manual_seed(1)
with torch.no_grad():
    out = model(torch.randn(2, 3, 224, 224))
h = hashlib.sha256()
for name, tensor in model.state_dict().items():
    h.update(name.encode()); h.update(tensor.cpu().numpy().tobytes())
h.update(out.numpy().tobytes())
print(h.hexdigest())
"""


def test_same_spec_and_seed_are_bit_identical_across_processes():
    spec = str(ROOT / "specs" / "spectformer.yaml")
    digests = {
        subprocess.run([sys.executable, "-c", DIGEST, spec], capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    }
    assert len(digests) == 1
    other_seed = archspec.build(archspec.load_spec(spec), seed=8).state_dict()["head.weight"]
    same_seed = archspec.build(archspec.load_spec(spec), seed=7).state_dict()["head.weight"]
    assert not torch.equal(other_seed, same_seed)
    assert (
        hashlib.sha256(same_seed.numpy().tobytes()).hexdigest()
        == hashlib.sha256(
            archspec.build(archspec.load_spec(spec), seed=7).state_dict()["head.weight"].numpy().tobytes()
        ).hexdigest()
    )


def test_spectral_mixer_stays_float32_under_cpu_autocast():
    mixer = SpectralGatingNetwork(dim=8, height=6, width=6, conv_in=3, conv_out=3)
    x = torch.randn(2, 36, 8)
    seen = []
    hook = torch.fft.rfft2

    def spy(tensor, *args, **kwargs):
        seen.append(tensor.dtype)
        return hook(tensor, *args, **kwargs)

    torch.fft.rfft2 = spy
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = mixer(x, (6, 6))
    finally:
        torch.fft.rfft2 = hook
    assert seen == [torch.float32]
    assert out.dtype == torch.bfloat16  # cast back to the surrounding precision
    torch.testing.assert_close(out.float(), mixer(x, (6, 6)), atol=0.1, rtol=0.05)


@pytest.mark.parametrize("module", [Attention(16, 2), ClassAttention(16, 2)], ids=["attention", "class-attention"])
def test_attention_is_stable_at_large_logits(module):
    with torch.no_grad():
        for layer in (module.q, module.kv):
            layer.weight.mul_(1e4)
    x = torch.randn(2, 9, 16) * 100
    out = module(x) if isinstance(module, ClassAttention) else module(x, (3, 3))
    assert torch.isfinite(out).all()
