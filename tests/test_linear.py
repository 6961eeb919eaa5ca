"""archspec.nn.linear: exact nn.Linear modules, called through oneDNN's fused-bias kernel for CPU inference."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import archspec
from archspec.nn import linear as fused
from archspec.nn.linear import linear

needs_kernel = pytest.mark.skipif(fused._fused is None, reason="this torch has no oneDNN linear kernel")


@needs_kernel
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(7, 16), (2, 5, 16), (3, 4, 5, 16)])
def test_fast_path_matches_f_linear(shape, bias):
    layer = nn.Linear(16, 12, bias=bias)
    x = torch.randn(shape)
    with torch.inference_mode():
        assert fused._unwatched(layer) and fused._takes_fast_path(x, layer.weight)
        got, want = linear(layer, x), F.linear(x, layer.weight, layer.bias)
    assert got.shape == want.shape == (*shape[:-1], 12)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


@needs_kernel
def test_non_contiguous_input():
    layer = nn.Linear(16, 8)
    x = torch.randn(2, 16, 6).transpose(1, 2)[:, ::2]
    with torch.inference_mode():
        torch.testing.assert_close(linear(layer, x), F.linear(x, layer.weight, layer.bias), rtol=0, atol=1e-5)


@needs_kernel
def test_fast_path_only_in_inference_mode_on_plain_float32_cpu_tensors():
    layer = nn.Linear(8, 4)
    x = torch.randn(3, 8)
    assert not fused._takes_fast_path(x, layer.weight)  # autograd on
    with torch.no_grad():
        assert not fused._takes_fast_path(x, layer.weight)  # forward-mode AD may still be watching
    with torch.inference_mode():
        assert fused._takes_fast_path(x, layer.weight)
        assert not fused._takes_fast_path(x.double(), layer.weight.double())
        assert not fused._takes_fast_path(x.to("meta"), layer.weight)
        assert not fused._takes_fast_path(torch.randn(3, 5), layer.weight)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not fused._takes_fast_path(x, layer.weight)
            assert linear(layer, x).dtype == torch.bfloat16  # autocast still applies


def test_a_hooked_or_replaced_module_is_called_as_a_module():
    layer = nn.Linear(8, 4)
    seen: list[tuple[int, ...]] = []
    handle = layer.register_forward_hook(lambda module, args, out: seen.append(tuple(out.shape)))
    with torch.inference_mode():
        assert not fused._unwatched(layer)
        linear(layer, torch.randn(3, 8))
    handle.remove()
    assert seen == [(3, 4)]
    handle = nn.modules.module.register_module_forward_hook(lambda module, args, out: seen.append(tuple(out.shape)))
    try:
        with torch.inference_mode():
            linear(layer, torch.randn(2, 8))
    finally:
        handle.remove()
    assert seen == [(3, 4), (2, 4)]

    class Subclass(nn.Linear):
        pass

    assert not fused._unwatched(Subclass(8, 4))
    assert fused._unwatched(layer)


def test_a_wrong_width_gets_torchs_own_message():
    layer = nn.Linear(8, 4)
    with torch.inference_mode(), pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied"):
        linear(layer, torch.randn(3, 5))


def test_flop_counters_see_a_linear():
    layer = nn.Linear(8, 4)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        linear(layer, torch.randn(3, 8))
    assert counter.get_total_flops() == 2 * 3 * 8 * 4


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_forward_mode_ad_and_vmap():
    layer = nn.Linear(8, 4)
    x, tangent = torch.randn(3, 8), torch.randn(3, 8)
    with torch.no_grad(), fwAD.dual_level():
        out = fwAD.unpack_dual(linear(layer, fwAD.make_dual(x, tangent)))
    assert out.tangent is not None
    torch.testing.assert_close(out.tangent, tangent @ layer.weight.detach().t(), rtol=0, atol=1e-6)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # vmap warns when it falls back to a per-sample loop
        batched = torch.vmap(lambda x: linear(layer, x))(torch.randn(2, 3, 8))
    assert batched.shape == (2, 3, 4)


def _linears(model: nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]


@pytest.mark.parametrize("name", archspec.list_specs())
def test_every_linear_of_a_built_model_is_exactly_nn_linear(name):
    model = archspec.create_model(name, device="meta")
    linears = _linears(model)
    assert linears, f"{name} has no Linear layers"
    assert {type(module) for module in model.modules() if isinstance(module, nn.Linear)} == {nn.Linear}


@pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")
def test_quantize_dynamic_quantizes_every_linear_and_keeps_the_logits():
    model = archspec.create_model("spectformer", overrides=["input.size=32", "drop_path_rate=0"]).eval()
    linears = _linears(model)
    quantized = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    dynamic = torch.ao.nn.quantized.dynamic.Linear
    assert [name for name, module in quantized.named_modules() if isinstance(module, dynamic)] == linears
    assert not [name for name, module in quantized.named_modules() if type(module) is nn.Linear]
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        want, got = model(x), quantized(x)
    assert got.shape == want.shape == (2, 6)
    assert (got.argmax(-1) == want.argmax(-1)).all()


def test_a_forward_replaced_on_the_instance_is_called():
    layer = nn.Linear(8, 4)
    calls = []
    plain = layer.forward

    def patched(x):
        calls.append(tuple(x.shape))
        return plain(x)

    layer.forward = patched
    with torch.inference_mode():
        linear(layer, torch.randn(3, 8))
    assert calls == [(3, 8)]
