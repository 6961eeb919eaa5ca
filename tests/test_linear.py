"""archspec.nn.Linear: nn.Linear's function and names, with oneDNN's fused-bias kernel for CPU inference."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archspec.nn import linear
from archspec.nn.linear import Linear

pytestmark = pytest.mark.skipif(linear._fused is None, reason="this torch has no oneDNN linear kernel")


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(7, 16), (2, 5, 16), (3, 4, 5, 16)])
def test_fast_path_matches_f_linear(shape, bias):
    layer = Linear(16, 12, bias=bias)
    x = torch.randn(shape)
    with torch.inference_mode():
        assert linear._takes_fast_path(x, layer.weight)
        got, want = layer(x), F.linear(x, layer.weight, layer.bias)
    assert got.shape == want.shape == (*shape[:-1], 12)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_non_contiguous_input():
    layer = Linear(16, 8)
    x = torch.randn(2, 16, 6).transpose(1, 2)[:, ::2]
    with torch.inference_mode():
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), rtol=0, atol=1e-5)


def test_fast_path_only_in_inference_mode_on_plain_float32_cpu_tensors():
    layer = Linear(8, 4)
    x = torch.randn(3, 8)
    assert not linear._takes_fast_path(x, layer.weight)  # autograd on
    with torch.no_grad():
        assert not linear._takes_fast_path(x, layer.weight)  # forward-mode AD may still be watching
    with torch.inference_mode():
        assert linear._takes_fast_path(x, layer.weight)
        assert not linear._takes_fast_path(x.double(), layer.weight.double())
        assert not linear._takes_fast_path(x.to("meta"), layer.weight)
        assert not linear._takes_fast_path(torch.randn(3, 5), layer.weight)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not linear._takes_fast_path(x, layer.weight)
            assert layer(x).dtype == torch.bfloat16  # autocast still applies


def test_a_wrong_width_gets_torchs_own_message():
    layer = Linear(8, 4)
    with torch.inference_mode(), pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied"):
        layer(torch.randn(3, 5))


def test_flop_counters_see_a_linear():
    layer = Linear(8, 4)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        layer(torch.randn(3, 8))
    assert counter.get_total_flops() == 2 * 3 * 8 * 4


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning")
def test_jit_trace_records_the_standard_op():
    layer = Linear(8, 4).eval()
    x = torch.randn(3, 8)
    with torch.no_grad():
        traced = torch.jit.trace(layer, x)
    assert "aten::linear" in str(traced.graph)
    torch.testing.assert_close(traced(x), layer(x), rtol=0, atol=0)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_forward_mode_ad_and_vmap():
    layer = Linear(8, 4)
    x, tangent = torch.randn(3, 8), torch.randn(3, 8)
    with torch.no_grad(), fwAD.dual_level():
        out = fwAD.unpack_dual(layer(fwAD.make_dual(x, tangent)))
    assert out.tangent is not None
    torch.testing.assert_close(out.tangent, tangent @ layer.weight.detach().t(), rtol=0, atol=1e-6)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # vmap warns when it falls back to a per-sample loop
        batched = torch.vmap(layer)(torch.randn(2, 3, 8))
    assert batched.shape == (2, 3, 4)


def test_gradients_flow_as_in_nn_linear():
    torch.manual_seed(0)
    ours, plain = Linear(8, 4), nn.Linear(8, 4)
    plain.load_state_dict(ours.state_dict())
    x = torch.randn(5, 8)
    ours(x).square().sum().backward()
    plain(x).square().sum().backward()
    assert ours.weight.grad is not None and plain.weight.grad is not None
    torch.testing.assert_close(ours.weight.grad, plain.weight.grad, rtol=0, atol=0)


def test_names_and_state_dict_are_nn_linears():
    layer = Linear(8, 4)
    assert repr(layer) == "Linear(in_features=8, out_features=4, bias=True)"
    assert list(layer.state_dict()) == ["weight", "bias"]
    assert isinstance(layer, nn.Linear)
