"""archspec.accel.token_linear: a token Linear by MKL's product or oneDNN's 1×1 conv, chosen per shape by timing."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import archspec
import archspec.accel as token_linear_module
from archspec.accel import token_linear

needs_kernel = pytest.mark.skipif(token_linear_module.pointwise is None, reason="this torch has no oneDNN conv kernel")

ROWS = 2 * 1024  # two images of 1,024 tokens: 2,048 × 64 × 64 = 8M multiply-adds, above MIN_MACS


@pytest.fixture(autouse=True)
def _fresh_choices(monkeypatch):
    """Each test starts with no shape measured and the choice on; what it measures is forgotten after."""
    monkeypatch.setattr(token_linear_module, "_faster", {})
    monkeypatch.setattr(token_linear_module, "_enabled", True)


def _force(monkeypatch, conv: bool) -> list[tuple[int, int]]:
    """Make every timing come out for ``conv``; returns the (in, out) of each shape timed."""
    timed: list[tuple[int, int]] = []

    def decide(layer: nn.Linear, x: torch.Tensor) -> bool:
        timed.append((layer.in_features, layer.out_features))
        return conv

    monkeypatch.setattr(token_linear_module, "_conv_is_faster", decide)
    monkeypatch.setattr(token_linear_module, "_trained_conv_is_faster", decide)
    return timed


@needs_kernel
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("features", [(64, 64), (64, 256), (256, 64)])
def test_the_conv_route_gives_the_linear_result(monkeypatch, bias, features):
    layer = nn.Linear(*features, bias=bias)
    x = torch.randn(2, 1024, features[0])
    timed = _force(monkeypatch, conv=True)
    with torch.inference_mode():
        got, want = token_linear(layer, x), layer(x)
    assert timed == [features]
    assert got.shape == want.shape == (2, 1024, features[1])
    assert got.is_contiguous()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@needs_kernel
def test_each_shape_is_timed_once_and_its_choice_kept(monkeypatch):
    timed = _force(monkeypatch, conv=True)
    wide, narrow = nn.Linear(64, 128), nn.Linear(128, 64)
    with torch.inference_mode():
        for _ in range(3):
            token_linear(wide, torch.randn(2, 1024, 64))
            token_linear(narrow, token_linear(wide, torch.randn(2, 1024, 64)))
        token_linear(wide, torch.randn(1, 1024, 64))  # another row count is another shape
    assert timed == [(64, 128), (128, 64), (64, 128)]
    assert token_linear_module._faster == {
        (ROWS, 64, 128, True, False): True, (ROWS, 128, 64, True, False): True, (1024, 64, 128, True, False): True
    }  # fmt: skip


@needs_kernel
def test_the_timing_runs_each_route_five_times(monkeypatch):
    layer = nn.Linear(64, 64)
    calls = []
    as_linear, as_conv = token_linear_module._as_linear, token_linear_module._as_conv
    monkeypatch.setattr(token_linear_module, "_as_linear", lambda *args: calls.append("mkl") or as_linear(*args))
    monkeypatch.setattr(token_linear_module, "_as_conv", lambda *args: calls.append("conv") or as_conv(*args))
    with torch.inference_mode():
        token_linear_module._conv_is_faster(layer, torch.randn(2, 1024, 64))
    assert calls == ["mkl", "conv"] * 5


@needs_kernel
@pytest.mark.parametrize("bias", [True, False])
def test_the_training_route_gives_the_linear_result_and_gradients(monkeypatch, bias):
    timed = _force(monkeypatch, conv=True)
    layer = nn.Linear(64, 256, bias=bias)
    x = torch.randn(2, 1024, 64, requires_grad=True)
    got = token_linear(layer, x)
    assert timed == [(64, 256)]
    permute = got.grad_fn.next_functions[0][0]  # reshape ← permute ← the convolution
    assert type(permute.next_functions[0][0]).__name__ == "ConvolutionBackward0"
    grads = torch.autograd.grad(got.square().sum(), [x, *layer.parameters()])
    want = layer(x)
    expected = torch.autograd.grad(want.square().sum(), [x, *layer.parameters()])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for grad, reference in zip(grads, expected, strict=True):
        torch.testing.assert_close(grad, reference, rtol=1e-4, atol=1e-3)
    assert token_linear_module._faster == {(ROWS, 64, 256, bias, True): True}


@needs_kernel
def test_the_training_timing_runs_forward_and_backward_on_copies(monkeypatch):
    layer = nn.Linear(64, 64)
    routes = []
    as_conv = token_linear_module._as_trainable_conv
    monkeypatch.setattr(
        token_linear_module, "_as_trainable_conv", lambda *args: routes.append("conv") or as_conv(*args)
    )
    x = torch.randn(2, 1024, 64, requires_grad=True)
    token_linear_module._trained_conv_is_faster(layer, x)
    assert routes == ["conv"] * 5
    assert layer.weight.grad is None and layer.bias.grad is None and x.grad is None  # nothing left behind


@needs_kernel
def test_the_choice_is_made_only_in_inference_mode_or_under_autograd_on_plain_float32_cpu_tensors(monkeypatch):
    timed = _force(monkeypatch, conv=True)
    layer = nn.Linear(64, 64)
    x = torch.randn(2, 1024, 64)
    with torch.no_grad():
        token_linear(layer, x)  # neither inference mode nor autograd: the module
    assert timed == []
    with torch.inference_mode():
        token_linear(layer, torch.randn(2, 16, 64))  # 2M multiply-adds: under MIN_MACS
        token_linear(layer, x.transpose(0, 1).contiguous().transpose(0, 1))  # not contiguous
        token_linear(layer, x.reshape(2048, 64))  # not tokens
        token_linear(nn.Linear(64, 64).double(), x.double())
        token_linear(nn.Linear(64, 64, device="meta"), x.to("meta"))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            token_linear(layer, x)
        with FlopCounterMode(display=False) as counter:
            token_linear(layer, x)
        assert counter.get_total_flops() == 2 * ROWS * 64 * 64  # the product is seen, as an ordinary linear
        token_linear_module.set_enabled(False)
        token_linear(layer, x)
        assert timed == []
        token_linear_module.set_enabled(True)
        token_linear(layer, x)
    assert timed == [(64, 64)]


@needs_kernel
def test_a_hooked_or_replaced_linear_is_called_as_a_module(monkeypatch):
    timed = _force(monkeypatch, conv=True)
    layer = nn.Linear(64, 64)
    x = torch.randn(2, 1024, 64)
    seen = []
    handle = layer.register_forward_hook(lambda module, args, out: seen.append(out.shape))
    with torch.inference_mode():
        token_linear(layer, x)
        handle.remove()
        layer.forward = lambda value: value  # type: ignore[method-assign]
        assert token_linear(layer, x) is x
    assert seen == [torch.Size([2, 1024, 64])]
    assert timed == []


def test_a_shape_mkl_won_is_served_by_the_module(monkeypatch):
    timed = _force(monkeypatch, conv=False)
    layer = nn.Linear(64, 64)
    seen = []
    layer.register_forward_hook(lambda module, args, out: seen.append(1))
    token_linear_module._faster[(ROWS, 64, 64, True, False)] = False
    with torch.inference_mode():
        token_linear(layer, torch.randn(2, 1024, 64))
    assert seen == [1] and timed == []


@needs_kernel
@pytest.mark.parametrize("name", ["convnext_atto", "pvt_v2_b0", "convformer_s18"])
def test_a_built_model_gives_the_same_logits_whichever_route_each_linear_takes(monkeypatch, name):
    monkeypatch.setattr(token_linear_module, "MIN_MACS", 0)  # every token linear of the small model takes part
    model = archspec.create_model(name, overrides={"input.size": 64, "num_classes": 10}).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        token_linear_module.set_enabled(False)
        want = model(x)
        token_linear_module.set_enabled(True)
        timed = _force(monkeypatch, conv=True)
        got = model(x)
    assert timed, "no linear of the model was large enough to be timed"
    assert all(token_linear_module._faster.values())
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@needs_kernel
def test_an_attached_linear_forward_takes_the_chosen_route_and_keeps_its_hooks(monkeypatch):
    from archspec.nn.ffn import FFN

    timed = _force(monkeypatch, conv=True)
    ffn = FFN(64, 64).eval()
    assert token_linear_module.apply(ffn) == 2
    assert token_linear_module.attached(ffn.fc1) and token_linear_module.attached(ffn.fc2)
    x = torch.randn(2, 1024, 64)
    with torch.inference_mode():
        got = ffn(x)
        assert timed == [(64, 64)]  # fc1 and fc2 share a shape
        seen = []
        handle = ffn.fc1.register_forward_hook(lambda module, args, out: seen.append(out.shape))
        hooked = ffn(x)  # the hook fires; the hooked fc1 runs the Linear's own product
        handle.remove()
        want = FFN.forward(ffn, x)
    assert seen == [torch.Size([2, 1024, 64])] and timed == [(64, 64)]
    torch.testing.assert_close(got, hooked, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_a_forward_set_on_the_instance_replaces_the_attached_one():
    layer = nn.Linear(4, 4)
    token_linear_module.apply(nn.ModuleDict({"fc": layer}))  # only the token Linears of known modules
    assert not token_linear_module.attached(layer)
    from archspec.nn.ffn import FFN

    ffn = FFN(4, 4)
    ffn.fc1.forward = lambda value: value  # type: ignore[method-assign]
    assert token_linear_module.apply(ffn) == 1  # fc2 only: fc1's own forward is left alone
    x = torch.randn(1, 3, 4)
    assert ffn.fc1(x) is x
    assert token_linear_module.remove(ffn) == 1 and not token_linear_module.attached(ffn.fc2)
