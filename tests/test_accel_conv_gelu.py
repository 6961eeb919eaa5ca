"""archspec.accel.conv_gelu: a conv and its GELU as one oneDNN kernel in CPU inference, and only there."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import archspec.accel as conv_act
from archspec.accel import conv_gelu

needs_kernel = pytest.mark.skipif(conv_act.pointwise is None, reason="this torch has no oneDNN conv kernel")


def _two_steps(conv: nn.Conv2d, act: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return act(conv(x))


@needs_kernel
@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("groups, bias", [(12, True), (12, False), (1, True)])
@pytest.mark.parametrize("channels_last", [True, False])
def test_the_fused_kernel_gives_the_two_step_result(approximate, groups, bias, channels_last):
    conv, act = nn.Conv2d(12, 12, 3, padding=1, groups=groups, bias=bias), nn.GELU(approximate)
    x = torch.randn(2, 12, 9, 7)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        assert conv_act._fusable(conv, act, x)
        got, want = conv_gelu(conv, act, x), _two_steps(conv, act, x)
    assert got.shape == want.shape == (2, 12, 9, 7)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


@needs_kernel
def test_the_kernel_is_taken_only_in_inference_mode_on_plain_float32_cpu_tensors():
    conv, act = nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.GELU()
    x = torch.randn(1, 8, 5, 5)
    assert not conv_act._fusable(conv, act, x)  # autograd on
    with torch.no_grad():
        assert not conv_act._fusable(conv, act, x)  # forward-mode AD may still be watching
    with torch.inference_mode():
        assert conv_act._fusable(conv, act, x)
        assert not conv_act._fusable(nn.Conv2d(8, 8, 3, padding=1, groups=8).double(), act, x.double())
        assert not conv_act._fusable(conv, act, x.to("meta"))
        assert not conv_act._fusable(conv, nn.ReLU(), x)
        assert not conv_act._fusable(nn.Conv2d(8, 8, 3, padding=1, padding_mode="reflect"), act, x)
        assert not conv_act._fusable(nn.Conv2d(8, 8, 3, padding="same"), act, x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not conv_act._fusable(conv, act, x)
        with FlopCounterMode(display=False) as counter:
            conv_gelu(conv, act, x)
        assert counter.get_total_flops() == 2 * 8 * 9 * 25  # the conv is seen, as an ordinary conv


@needs_kernel
def test_a_hooked_or_replaced_module_is_called_as_a_module():
    conv, act = nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.GELU()
    x = torch.randn(1, 4, 6, 6)
    seen = []
    handle = conv.register_forward_hook(lambda module, args, out: seen.append(out.shape))
    with torch.inference_mode():
        assert not conv_act._fusable(conv, act, x)
        conv_gelu(conv, act, x)
        handle.remove()
        assert conv_act._fusable(conv, act, x)
        global_handle = nn.modules.module.register_module_forward_hook(lambda *args: None)
        try:
            assert not conv_act._fusable(conv, act, x)
        finally:
            global_handle.remove()
        act.forward = lambda value: value  # type: ignore[method-assign]
        assert not conv_act._fusable(conv, act, x)
    assert seen == [torch.Size([1, 4, 6, 6])]


@needs_kernel
def test_a_built_pvt_v2_model_gives_the_same_logits_with_and_without_the_kernel(monkeypatch):
    import archspec

    model = archspec.create_model("pvt_v2_b0", overrides=["input.size=64"]).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        fused = model(x)
        monkeypatch.setattr(conv_act, "pointwise", None)
        plain = model(x)
    torch.testing.assert_close(fused, plain, rtol=0, atol=1e-5)


def test_a_hook_on_the_ffn_s_conv_wrapper_still_fires_with_the_two_step_output():
    from archspec.nn.ffn import PVT2FFN

    ffn = PVT2FFN(8, 16).eval()
    assert conv_act.apply(ffn) == 3  # its forward, fc1's and fc2's
    x = torch.randn(2, 4 * 5, 8)
    seen = []
    ffn.dwconv.register_forward_hook(lambda module, args, out: seen.append(out))
    with torch.inference_mode():
        got = ffn(x, (4, 5))
        want = ffn.fc2(
            ffn.act(ffn.dwconv.dwconv(ffn.fc1(x).reshape(2, 4, 5, 16).permute(0, 3, 1, 2)).flatten(2).transpose(1, 2))
        )
    assert len(seen) == 1 and seen[0].shape == (2, 20, 16)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


@needs_kernel
@pytest.mark.parametrize("se", [False, True])
def test_accel_s_ffn_forward_takes_the_fused_kernel_and_gives_the_class_s_result(monkeypatch, se):
    from archspec.nn.ffn import PVT2FFN
    from archspec.nn.se import SqueezeExcite

    ffn = PVT2FFN(8, 16, se=SqueezeExcite(16, 4, nn.ReLU(), nn.Sigmoid()) if se else None).eval()
    conv_act.apply(ffn)
    kernels = []
    kernel = conv_act.pointwise
    monkeypatch.setattr(conv_act, "pointwise", lambda *args: kernels.append(args[7]) or kernel(*args))
    x = torch.randn(2, 4 * 5, 8)
    with torch.inference_mode():
        got, want = ffn(x, (4, 5)), PVT2FFN.forward(ffn, x, (4, 5))
    assert kernels == ["gelu"]  # fc1 and fc2 are under MIN_MACS: their product is the Linear's
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    conv_act.set_enabled(False)
    try:
        with torch.inference_mode():
            torch.testing.assert_close(ffn(x, (4, 5)), want, rtol=0, atol=0)
    finally:
        conv_act.set_enabled(True)
    assert kernels == ["gelu"]  # switched off: the class's forward


needs_bf16 = pytest.mark.skipif(
    conv_act.pointwise is None or not conv_act._native_bfloat16(), reason="this CPU has no native bfloat16 kernels"
)


@needs_bf16
@pytest.mark.parametrize("bias", [True, False])
def test_under_bfloat16_autocast_the_fused_kernel_gives_what_autocast_gives(bias):
    conv, act = nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=bias), nn.GELU()
    x = torch.randn(2, 16, 9, 7).to(torch.bfloat16).to(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv_act._fusable(conv, act, x)
        got, want = conv_gelu(conv, act, x), _two_steps(conv, act, x)
        assert not conv_act._fusable(conv, act, x.float())  # a float32 tensor under autocast: not this path
    assert got.dtype == want.dtype == torch.bfloat16
    # The fused kernel rounds once, after the GELU; autocast's two steps round the conv's output too.
    torch.testing.assert_close(got.float(), want.float(), rtol=1.6e-2, atol=1.6e-2)


def test_without_native_bfloat16_or_under_float16_autocast_nothing_is_fused(monkeypatch):
    conv, act = nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.GELU()
    x = torch.randn(1, 8, 5, 5)
    with torch.inference_mode():
        with torch.autocast("cpu", dtype=torch.float16):
            assert not conv_act._fusable(conv, act, x.half())
        monkeypatch.setattr(conv_act, "_native_bfloat16", lambda: False)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not conv_act._fusable(conv, act, x.bfloat16())
