"""archspec.accel.bfloat16_attend: attention on bfloat16 CPU tensors as product, softmax, product, and only there."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from archspec import accel
from archspec.nn import Attention


@pytest.fixture
def native(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CPU with native bfloat16, as far as the route's check goes (tiny tensors run anywhere)."""
    monkeypatch.setattr(accel, "_native_bfloat16", lambda: True)


@pytest.fixture
def fused_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the calls of ``F.scaled_dot_product_attention``: the class's own route."""
    calls: list[int] = []
    real = F.scaled_dot_product_attention

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", counted)
    return calls


def _pair(**options) -> tuple[Attention, Attention]:
    """The same attention twice: with accel's attend attached, and plain."""
    torch.manual_seed(0)
    fast = Attention(32, 4, **options)
    plain = Attention(32, 4, **options)
    plain.load_state_dict(fast.state_dict())
    accel.apply(fast)
    assert "attend" in fast.__dict__ and "attend" not in plain.__dict__
    return fast, plain


@pytest.mark.parametrize("fused", [False, True])
def test_bfloat16_inference_takes_the_unfused_route_and_gives_what_sdpa_gives(native, fused_calls, fused):
    fast, plain = _pair(fused=fused)
    x = torch.randn(2, 49, 32)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        got = fast.eval()(x)
        assert fused_calls == []
        want = plain.eval()(x)
        assert fused_calls == [1]
    assert got.dtype == want.dtype == torch.bfloat16
    # Both round to bfloat16 at different places: the probabilities here, inside the kernel there.
    torch.testing.assert_close(got.float(), want.float(), rtol=2e-2, atol=2e-2)


def test_bfloat16_training_gradients_match_sdpa_at_bfloat16_tolerance(native, fused_calls):
    fast, plain = _pair()
    x = torch.randn(2, 49, 32)
    grads = []
    for module in (fast, plain):
        inputs = x.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            module.train()(inputs).float().square().sum().backward()
        grads.append([inputs.grad, *(p.grad for p in module.parameters())])
    assert fused_calls == [1]  # the plain module's only
    for got, want in zip(*grads, strict=True):
        assert float((got - want).norm() / want.norm()) < 2e-2


def test_the_route_is_left_for_sdpa_elsewhere(native, fused_calls, monkeypatch):
    fast, _ = _pair(attn_drop=0.1)
    x = torch.randn(1, 16, 32)
    with torch.inference_mode():
        fast.eval()(x)  # float32
        assert len(fused_calls) == 1
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast.eval()(x)  # bfloat16: unfused
            assert len(fused_calls) == 1
            with FlopCounterMode(display=False):  # something watches the operators
                fast.eval()(x)
            assert len(fused_calls) == 2
            monkeypatch.setattr(accel, "UNFUSED_SCORES", 15 * 16)  # a sequence too long for the route
            fast.eval()(x)
            assert len(fused_calls) == 3
    monkeypatch.setattr(accel, "UNFUSED_SCORES", 1 << 18)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast.train()(x)  # dropout on the weights: SDPA's
        assert len(fused_calls) == 4
        accel.set_enabled(False)
        try:
            fast.eval()(x)
        finally:
            accel.set_enabled(True)
        assert len(fused_calls) == 5
        monkeypatch.setattr(accel, "_native_bfloat16", lambda: False)
        fast.eval()(x)
        assert len(fused_calls) == 6


def test_remove_takes_the_attend_back_off():
    fast, _ = _pair()
    assert accel.attached(fast)
    linears = sum(1 for m in fast.modules() if m is not fast and accel.attached(m))  # q, kv, proj
    assert accel.remove(fast) == 1 + linears == 4
    assert "attend" not in fast.__dict__ and not accel.attached(fast)
