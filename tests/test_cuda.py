"""CUDA checks: skipped where no GPU is present."""

from __future__ import annotations

import pytest
import torch
from conftest import ROOT, SPECS

import archspec

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available"),
]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_cuda_matches_cpu(path):
    plan = archspec.plan(archspec.load_spec(path))
    cpu = archspec.build(plan).eval()
    gpu = archspec.build(plan, device="cuda").eval()
    gpu.load_state_dict(cpu.state_dict())
    x = torch.randn(2, *plan.input.dims)
    with torch.no_grad():
        torch.testing.assert_close(gpu(x.cuda()).cpu(), cpu(x), atol=2e-3, rtol=2e-3)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_bf16_autocast_keeps_the_fft_in_float32(path):
    plan = archspec.plan(archspec.load_spec(path))
    model = archspec.build(plan, device="cuda").eval()
    x = torch.randn(2, *plan.input.dims, device="cuda")
    with torch.no_grad():
        reference = model(x)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(x)
    assert out.dtype == torch.bfloat16
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), reference, atol=0.15, rtol=0.1)


def test_attention_uses_a_fused_kernel():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    plan = archspec.plan(archspec.load_spec(ROOT / "specs" / "spectformer-h-s.yaml"))
    model = archspec.build(plan, device="cuda").eval()
    x = torch.randn(4, *plan.input.dims, device="cuda")
    # With the math fallback disabled, this raises unless a fused kernel accepts every attention call.
    fused = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION]
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16), sdpa_kernel(fused):
        out = model(x)
    assert out.shape == (4, 1000)


def test_grad_checkpointing_lowers_peak_cuda_memory():
    model = archspec.create_model("spectformer", overrides=["drop_path_rate=0"], device="cuda").train()
    x = torch.randn(16, 3, 224, 224, device="cuda")
    peaks, grads = {}, {}
    for mode in (False, True):
        model.set_grad_checkpointing(mode)
        model.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        model(x).logsumexp(-1).mean().backward()
        peaks[mode] = torch.cuda.max_memory_allocated()
        grads[mode] = {n: p.grad.clone() for n, p in model.named_parameters()}
    assert peaks[True] < 0.7 * peaks[False], peaks
    for name, grad in grads[False].items():
        torch.testing.assert_close(grads[True][name], grad, atol=1e-5, rtol=1e-4, msg=name)
